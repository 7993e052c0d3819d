"""Evaluation: PSNR, SSIM and ΔE as the field reports them, and scoring models on paired datasets."""
