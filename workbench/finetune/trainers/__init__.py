"""The built-in fine-tune trainers: each module registers one with @register_trainer.

Every module here is imported on the first trainer look-up (finetune/trainer.py),
so a new built-in trainer is one new module in this folder.
"""
