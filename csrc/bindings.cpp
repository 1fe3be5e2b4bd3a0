// The one file that includes pybind11.  Four steps per call (STYLE.md):
// check with the GIL held, allocate the outputs up front, release the GIL for
// the whole kernel, hand the results back.  Argument validation that users
// see (names, values, NaN counts) lives in python/smallgan/coreset.py; the
// checks here guard the engine against misuse of this private module.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "cuda/kcenter_cuda.hpp"  // plain C++: declarations only, no CUDA headers
#include "distance.hpp"
#include "kcenter.hpp"
#include "simd.hpp"
#include "thread_pool.hpp"

namespace py = pybind11;
using namespace smallgan;

namespace {

SimdLevel resolve_simd(int simd) {
    if (simd < 0) return default_simd_level();
    if (simd > static_cast<int>(detect_simd_level()))
        throw std::invalid_argument(std::string("SIMD level ") + std::to_string(simd) +
                                    " is not available here (best: " +
                                    simd_level_name(detect_simd_level()) + ")");
    return static_cast<SimdLevel>(simd);
}

// Fills the input description from a numpy array (float32/float64, any
// strides that are whole elements) and the selected indices.
KCenterInput describe(const py::array& x, std::int64_t k, std::int64_t first,
                      const py::array_t<std::int64_t, py::array::c_style>& selected, int threads,
                      int simd, bool prune, int path) {
    if (x.ndim() != 2) throw std::invalid_argument("x must be 2-D");
    KCenterInput in;
    if (x.dtype().is(py::dtype::of<float>()))
        in.dtype = DType::Float32;
    else if (x.dtype().is(py::dtype::of<double>()))
        in.dtype = DType::Float64;
    else
        throw std::invalid_argument("x must be float32 or float64");
    const auto item = static_cast<std::int64_t>(x.itemsize());
    if (x.strides(0) % item != 0 || x.strides(1) % item != 0)
        throw std::invalid_argument("x strides must be whole elements");
    in.data = x.data();
    in.n = static_cast<std::int64_t>(x.shape(0));
    in.d = static_cast<std::int64_t>(x.shape(1));
    in.row_stride = static_cast<std::int64_t>(x.strides(0)) / item;
    in.col_stride = static_cast<std::int64_t>(x.strides(1)) / item;
    in.k = k;
    in.first = first;
    in.selected.assign(selected.data(), selected.data() + selected.size());
    in.threads = threads;
    in.simd = resolve_simd(simd);
    in.prune = prune;
    if (path < 0 || path > 2) throw std::invalid_argument("path must be 0 (auto), 1 (blocked) or 2 (spatial)");
    in.path = static_cast<Path>(path);
    return in;
}

py::tuple run_sync(const py::array& x, std::int64_t k, std::int64_t first,
                   const py::array_t<std::int64_t, py::array::c_style>& selected, int threads,
                   int simd, bool want_distances, bool prune, int path, bool stats) {
    KCenterInput in = describe(x, k, first, selected, threads, simd, prune, path);
    if (k < 1) throw std::invalid_argument("k must be >= 1");
    py::array_t<std::int64_t> idx(static_cast<py::ssize_t>(k));
    py::object dist = py::none();
    in.indices = idx.mutable_data();
    if (want_distances) {
        py::array_t<double> d(static_cast<py::ssize_t>(k));
        in.distances = d.mutable_data();
        dist = std::move(d);
    }
    KCenterStats st;
    {
        py::gil_scoped_release nogil;
        st = kcenter(in);
    }
    if (!stats) return py::make_tuple(idx, dist, st.radius, st.threads_used);
    // only on request: building the dict costs ~0.4 us, measurable on an
    // 8 us training-size call
    py::dict info;
    info["path"] = st.path == Path::Spatial ? "spatial" : "blocked";
    info["block_updates"] = st.block_updates;
    return py::make_tuple(idx, dist, st.radius, st.threads_used, info);
}

// ---- CUDA kernel ---------------------------------------------------------
// Device memory comes as integers (torch's data_ptr()) and the stream as
// torch.cuda.Stream.cuda_stream; the caller (coreset.py) allocated every
// buffer with torch on x's device and keeps them alive.  The launch is
// asynchronous: nothing here waits for the GPU.

#if defined(SMALLGAN_HAVE_CUDA)
void cuda_kcenter(std::uintptr_t x, std::int64_t n, std::int64_t d, std::int64_t row_stride,
                  std::int64_t col_stride, int dtype, std::int64_t k, std::int64_t first,
                  std::uintptr_t selected, std::int64_t n_selected, std::uintptr_t indices,
                  std::uintptr_t distances, bool distances_f64, std::uintptr_t workspace,
                  std::size_t workspace_bytes, std::uintptr_t aux, bool skip_if_bad, int device,
                  std::uintptr_t stream, int blocks) {
    cuda::Args a;
    a.x = reinterpret_cast<const void*>(x);
    if (dtype < 0 || dtype > 3) throw std::invalid_argument("bad dtype code " + std::to_string(dtype));
    a.dtype = static_cast<cuda::XType>(dtype);
    a.n = n;
    a.d = d;
    a.row_stride = row_stride;
    a.col_stride = col_stride;
    a.k = k;
    a.first = first;
    a.selected = reinterpret_cast<const std::int64_t*>(selected);
    a.n_selected = n_selected;
    a.indices = reinterpret_cast<std::int64_t*>(indices);
    a.distances = reinterpret_cast<void*>(distances);
    a.distances_f64 = distances_f64;
    a.workspace = reinterpret_cast<void*>(workspace);
    a.workspace_bytes = workspace_bytes;
    a.aux = reinterpret_cast<std::int64_t*>(aux);
    a.skip_if_bad = skip_if_bad;
    a.device = device;
    a.stream = stream;
    a.blocks = blocks;
    py::gil_scoped_release nogil;  // launching can wait on the driver (module load, queue full)
    cuda::kcenter(a);
}

py::dict cuda_plan(std::int64_t n, std::int64_t d, int device, int blocks) {
    cuda::Plan p;
    {
        py::gil_scoped_release nogil;
        p = cuda::plan(device, n, d, blocks);
    }
    py::dict out;
    out["blocks"] = p.blocks;
    out["threads"] = p.threads;
    out["rows_per_block"] = p.rows_per_block;
    out["resident"] = p.resident;
    out["centre_in_shared"] = p.centre_in_shared;
    out["shared_bytes"] = p.shared_bytes;
    return out;
}
#else
[[noreturn]] void no_cuda() {
    throw std::runtime_error("smallgan was built without the CUDA kernel (smallgan._core.cuda is False)");
}
#endif

// ---- background pool ----------------------------------------------------

struct AsyncJob {
    KCenterInput in;
    py::object keep_x;      // keeps the caller's array alive until the job ends
    py::object keep_sel;
    py::object indices;     // output buffers, allocated at submit time
    py::object distances;
    py::object future;      // concurrent.futures.Future
    void release() {        // GIL held
        keep_x = py::object();
        keep_sel = py::object();
        indices = py::object();
        distances = py::object();
        future = py::object();
    }
};

// The current pool, replaced after shutdown() or set_pool_size().  Shared, so
// a caller holding it never sees it freed under its feet; its jobs hold only
// its stop token, never the pool itself (a job owning its pool could end up
// joining its own thread).
std::mutex g_pool_mu;
std::shared_ptr<ThreadPool> g_pool;
std::size_t g_pool_size = 0;  // 0 = default

std::size_t default_pool_size() {
    if (const char* env = std::getenv("SMALLGAN_POOL_THREADS")) {
        const long v = std::strtol(env, nullptr, 10);
        if (v > 0) return static_cast<std::size_t>(v);
    }
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    // Selection jobs are small (serial at training sizes); a few workers keep
    // `prefetch` jobs in flight without competing with the training process.
    return std::min<std::size_t>(4, hw);
}

std::shared_ptr<ThreadPool> pool() {
    std::lock_guard<std::mutex> lock(g_pool_mu);
    if (!g_pool) g_pool = std::make_shared<ThreadPool>(g_pool_size ? g_pool_size : default_pool_size());
    return g_pool;
}

void deliver(const std::shared_ptr<AsyncJob>& job, double radius, int threads_used,
             const std::string& error, bool value_error) {
    py::gil_scoped_acquire gil;
    try {
        if (!error.empty()) {
            py::object exc = py::module_::import("builtins").attr(value_error ? "ValueError" : "RuntimeError")(error);
            job->future.attr("set_exception")(exc);
        } else {
            job->future.attr("set_result")(
                py::make_tuple(job->indices, job->distances, radius, threads_used));
        }
    } catch (py::error_already_set& e) {
        // a Future callback raised: report it like Python does for threads
        e.discard_as_unraisable("smallgan background job");
    }
    job->release();
}

// `stopping`: the stop token of the pool the job was submitted to.  Once that
// pool's shutdown has begun, a job that has not started is cancelled (run by
// shutdown itself for the queued ones, or by a worker that had just dequeued
// it); the shutdown of any other pool never touches it.
void job_body(const std::shared_ptr<AsyncJob>& job, const std::atomic<bool>& stopping) {
    {
        py::gil_scoped_acquire gil;
        bool run = false;
        try {
            if (!stopping.load())
                run = job->future.attr("set_running_or_notify_cancel")().cast<bool>();
            else
                job->future.attr("cancel")();
        } catch (py::error_already_set& e) {
            e.discard_as_unraisable("smallgan background job");
        }
        if (!run) {  // cancelled by the user, or by its pool's shutdown
            job->release();
            return;
        }
    }
    std::string error;
    bool value_error = false;
    KCenterStats st;
    try {
        st = kcenter(job->in);
    } catch (const std::invalid_argument& e) {
        error = e.what();
        value_error = true;
    } catch (const std::exception& e) {
        error = e.what();
    }
    deliver(job, st.radius, st.threads_used, error, value_error);
}

void submit(const py::array& x, std::int64_t k, std::int64_t first,
            const py::array_t<std::int64_t, py::array::c_style>& selected, int threads, int simd,
            bool want_distances, py::object future, bool prune, int path) {
    auto job = std::make_shared<AsyncJob>();
    job->in = describe(x, k, first, selected, threads, simd, prune, path);
    if (k < 1) throw std::invalid_argument("k must be >= 1");
    py::array_t<std::int64_t> idx(static_cast<py::ssize_t>(k));
    job->in.indices = idx.mutable_data();
    job->indices = idx;
    job->distances = py::none();
    if (want_distances) {
        py::array_t<double> d(static_cast<py::ssize_t>(k));
        job->in.distances = d.mutable_data();
        job->distances = d;
    }
    job->keep_x = x;
    job->keep_sel = selected;
    job->future = std::move(future);
    std::shared_ptr<ThreadPool> p = pool();
    p->submit([job, stopping = p->stop_token()] { job_body(job, *stopping); });
}

// Called at interpreter exit (atexit, registered by coreset.py), by
// set_pool_size and by tests: jobs of this pool that have not started are
// cancelled, running ones finish and deliver, workers exit.  A submit that
// comes meanwhile starts the next pool, whose jobs this shutdown never sees.
void shutdown() {
    std::shared_ptr<ThreadPool> p;
    {
        std::lock_guard<std::mutex> lock(g_pool_mu);
        p = std::move(g_pool);
    }
    if (!p) return;
    auto pending = p->stop();     // sets p's stop token
    for (auto& j : pending) j();  // each cancels its Future and drops its references (GIL held)
    py::gil_scoped_release nogil;  // running jobs need the GIL to deliver
    p->join();
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "smallgan compiled engine: exact greedy k-center (private; use smallgan.kcenter)";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });

    m.def("kcenter", &run_sync, py::arg("x"), py::arg("k"), py::arg("first"), py::arg("selected"),
          py::arg("threads") = 0, py::arg("simd") = -1, py::arg("want_distances") = false,
          py::arg("prune") = true, py::arg("path") = 0, py::arg("stats") = false,
          "Runs greedy k-center; returns (indices, distances or None, radius, threads_used), and with\n"
          "stats=True a fifth element, info: info['path'] is the traversal that ran ('blocked' or\n"
          "'spatial'; path=0 chooses, 1 and 2 force one), info['block_updates'] the 16-row block\n"
          "kernel calls it made.");
    m.def("submit", &submit, py::arg("x"), py::arg("k"), py::arg("first"), py::arg("selected"),
          py::arg("threads"), py::arg("simd"), py::arg("want_distances"), py::arg("future"),
          py::arg("prune") = true, py::arg("path") = 0,
          "Queues a k-center job on the background pool; the Future receives the kcenter tuple.");
    m.def("shutdown", &shutdown, "Cancels queued jobs, waits for running ones, stops the pool.");
    m.def("pool_size", [] {
        std::lock_guard<std::mutex> lock(g_pool_mu);
        return g_pool ? g_pool->size() : (g_pool_size ? g_pool_size : default_pool_size());
    });
    m.def("pool_started", [] {
        std::lock_guard<std::mutex> lock(g_pool_mu);
        return static_cast<bool>(g_pool);
    });
    m.def("pending_jobs", [] {
        std::lock_guard<std::mutex> lock(g_pool_mu);
        return g_pool ? g_pool->pending() : std::size_t{0};
    });
    m.def("set_pool_size", [](std::size_t n) {
        if (n < 1) throw std::invalid_argument("pool size must be >= 1");
        {
            // first: a submit while shutdown() below waits for running jobs
            // (GIL released) starts a pool of the new size already
            std::lock_guard<std::mutex> lock(g_pool_mu);
            g_pool_size = n;
        }
        shutdown();  // the next submit starts a pool of the new size
    });
    m.def("_after_fork_child", [] {
        // The pool's threads do not exist in a forked child; its mutexes may be
        // in any state.  Leak the old object rather than touch it (moving the
        // shared_ptr out touches neither the pool nor its reference count).
        (void)new std::shared_ptr<ThreadPool>(std::move(g_pool));
        new (&g_pool_mu) std::mutex();
    });
    m.def("simd_level", [] { return std::string(simd_level_name(default_simd_level())); });
    m.def("detected_simd_level", [] { return std::string(simd_level_name(detect_simd_level())); });
    m.def("simd_level_id", [](const std::string& name) { return static_cast<int>(parse_simd_level(name)); });
    m.def("available_simd_levels", [] {
        py::list out;
        for (int l = 0; l <= static_cast<int>(detect_simd_level()); ++l)
            out.append(simd_level_name(static_cast<SimdLevel>(l)));
        return out;
    });
    m.def("openmp", &have_openmp);
    m.def("max_threads", &max_threads);
    m.def("choose_threads", &choose_threads, py::arg("n"), py::arg("d"), py::arg("threads") = 0);
    m.def("choose_path", [](std::int64_t n, std::int64_t d, std::int64_t centres) {
        return std::string(choose_path(n, d, centres) == Path::Spatial ? "spatial" : "blocked");
    }, py::arg("n"), py::arg("d"), py::arg("centres"),
          "The traversal kcenter picks by default for n rows, d columns, k + len(selected) centres.");
    m.attr("block_rows") = static_cast<int>(kBlock);
    m.def("cuda_workspace_bytes", [](std::int64_t n, std::int64_t d) {
        if (n < 1 || d < 1) throw std::invalid_argument("n and d must be >= 1");
        return cuda::workspace_layout(n, d).bytes;
    }, py::arg("n"), py::arg("d"));
    m.attr("cuda_aux_len") = cuda::kAuxLen;
#if defined(SMALLGAN_HAVE_CUDA)
    m.attr("cuda") = true;
    m.attr("cuda_architectures") = std::string(SMALLGAN_CUDA_ARCHITECTURES);
    m.attr("cuda_runtime_version") = cuda::runtime_version();
    m.def("cuda_kcenter", &cuda_kcenter, py::arg("x"), py::arg("n"), py::arg("d"), py::arg("row_stride"),
          py::arg("col_stride"), py::arg("dtype"), py::arg("k"), py::arg("first"), py::arg("selected"),
          py::arg("n_selected"), py::arg("indices"), py::arg("distances"), py::arg("distances_f64"),
          py::arg("workspace"), py::arg("workspace_bytes"), py::arg("aux"), py::arg("skip_if_bad"),
          py::arg("device"), py::arg("stream"), py::arg("blocks") = 0,
          "Enqueues greedy k-center on a CUDA stream (device pointers as ints); returns at once.");
    m.def("cuda_plan", &cuda_plan, py::arg("n"), py::arg("d"), py::arg("device"), py::arg("blocks") = 0,
          "The launch configuration cuda_kcenter would use for an (n, d) problem.");
    m.def("cuda_compute_capability", [](int device) {
        py::gil_scoped_release nogil;
        return cuda::compute_capability(device);
    }, py::arg("device"));
    m.def("cuda_supported", [](int device) {
        py::gil_scoped_release nogil;
        return cuda::supported(device);
    }, py::arg("device"), "Whether the kernel has code for this device (never raises).");
#else
    m.attr("cuda") = false;
    m.attr("cuda_architectures") = std::string();
    m.attr("cuda_runtime_version") = 0;
    m.def("cuda_kcenter", [](py::args, py::kwargs) { no_cuda(); });
    m.def("cuda_plan", [](py::args, py::kwargs) -> py::dict { no_cuda(); });
    m.def("cuda_compute_capability", [](py::args, py::kwargs) -> int { no_cuda(); });
    m.def("cuda_supported", [](int) { return false; }, py::arg("device"));
#endif
#if defined(SMALLGAN_HAVE_AVX2)
    m.attr("compiled_avx2") = true;
#else
    m.attr("compiled_avx2") = false;
#endif
#if defined(SMALLGAN_HAVE_AVX512)
    m.attr("compiled_avx512") = true;
#else
    m.attr("compiled_avx512") = false;
#endif
}
