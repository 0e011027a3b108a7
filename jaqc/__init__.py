"""jaqc: joint search of CNN architecture, low-bit quantization and a BitFusion-style accelerator."""

__version__ = "0.1.0"
