import sys

from hazmon.cli import main

sys.exit(main())
