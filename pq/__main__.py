import sys

from pq.cli import main

sys.exit(main())
