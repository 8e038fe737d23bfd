#!/bin/bash
# The autoencoder model card on photos_v1:test (test only reports): the val script's
# configurations, written to benchmarks/results/colour_test_autoencoder.
PART=test exec bash "$(dirname "$0")/colour_eval_val_autoencoder.sh"
