// A small fixed-size FIFO thread pool for background k-center jobs.
//
// Python-free on purpose: jobs are plain callables.  The binding wraps each
// job so that it takes the GIL only to start (notify the Future) and to
// deliver its result; the k-center work itself runs with no GIL.
//
// Each pool has its own stop flag (stop_token()), set when its stop() begins.
// A job captures its own pool's token to learn whether to start or cancel
// itself: a flag shared by all pools would let one pool's shutdown cancel the
// jobs of the pool that replaces it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace smallgan {

class ThreadPool {
public:
    using Job = std::function<void()>;
    // True once this pool's stop() has begun.  Shared, so a job may hold it
    // (and a pending job handed back by stop() may read it) after the pool
    // itself is gone.
    using StopToken = std::shared_ptr<const std::atomic<bool>>;

    explicit ThreadPool(std::size_t workers) {
        if (workers == 0) workers = 1;
        threads_.reserve(workers);
        for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
    }

    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    ~ThreadPool() { stop_and_join(); }

    std::size_t size() const { return threads_.size(); }

    StopToken stop_token() const { return stop_flag_; }

    // Queues a job; throws std::runtime_error once the pool is stopping.
    void submit(Job job) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (stopping_) throw std::runtime_error("the smallgan engine pool has been shut down");
            queue_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

    // Stops accepting work and hands back the jobs that never started, so the
    // caller can cancel them in its own context (for us: with the GIL held).
    std::deque<Job> stop() {
        stop_flag_->store(true);  // before the queue is emptied: no job starts unwarned
        std::deque<Job> pending;
        {
            std::lock_guard<std::mutex> lock(mu_);
            stopping_ = true;
            pending.swap(queue_);
        }
        cv_.notify_all();
        return pending;
    }

    // Waits for the running jobs to finish; idempotent.
    void join() {
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    void stop_and_join() {
        stop();  // pending jobs, if any, are dropped here
        join();
    }

    // Number of jobs queued but not started.
    std::size_t pending() {
        std::lock_guard<std::mutex> lock(mu_);
        return queue_.size();
    }

private:
    void loop() {
        for (;;) {
            Job job;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) return;  // stopping and nothing left to run
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            job();  // jobs catch their own exceptions (see bindings.cpp)
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    bool stopping_ = false;
    std::shared_ptr<std::atomic<bool>> stop_flag_ = std::make_shared<std::atomic<bool>>(false);
    std::vector<std::thread> threads_;
};

}  // namespace smallgan
