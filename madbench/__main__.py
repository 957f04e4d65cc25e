import sys

from madbench.cli import main

sys.exit(main())
