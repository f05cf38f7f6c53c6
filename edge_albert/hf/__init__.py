"""Workstation side: the Hugging Face ALBERT model as PyTorch and transformers see it.

Checkpoint reading (`checkpoint`), the one table of weight names (`weights`), the PyTorch
reference runner (`reference`) and its early-exit rule (`early_exit`), the multiply-accumulate
count (`macs`) and the quieting of the workstation libraries (`quiet`). The converter, training,
finetune, compress and the benchmarks build on it; the device side never imports it.
numpy, torch and transformers are imported by the modules that need them, not here.
"""
