"""Engines that run the training loop: readable numpy, compiled CPU, CUDA, ensembles."""
