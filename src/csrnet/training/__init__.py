"""Training (PyTorch): the torch networks, the training loop, paired datasets, synthetic degradations
and the local-task pairs. Research and training code: nothing on the ``enhance`` path imports it."""
