"""`python -m relay.cli`: how `relay up` starts its API, worker and beat children."""

import sys

from relay.cli.main import main

sys.exit(main())
