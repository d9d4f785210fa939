import sys

from weathervane.simulate.cli import main

sys.exit(main())
