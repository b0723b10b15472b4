"""python -m tests.tempest: deploy Lamina with Keystone, run Tempest's volume API suite, print
the totals (deploy/tempest/README.md)."""

import sys

from tests.tempest.harness import main

sys.exit(main())
