import sys

from smallgan.cli import main

sys.exit(main())
