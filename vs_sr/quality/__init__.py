"""Quality: PSNR/SSIM as the super-resolution literature computes them, and video evaluation."""
