"""Pixel-level work, torch-free: pixel types, the condition copy's resize, lattices and the C kernel."""
