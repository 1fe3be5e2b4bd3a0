"""Prints the comparison table of bench/README.md (same as ``smallgan bench``).

    python bench/compare.py [--quick] [--sizes n,d,k ...] [--repeats N]
"""
import sys

from smallgan.compare import main

if __name__ == "__main__":
    sys.exit(main())
