"""Measuring models: reconstruction metrics, prior likelihoods, and the classifiers that score samples."""
