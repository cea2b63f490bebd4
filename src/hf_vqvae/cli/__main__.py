"""`python -m hf_vqvae.cli`: the `hf-vqvae` command."""

import sys

from . import main

sys.exit(main())
