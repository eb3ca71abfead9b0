"""Fine-tuning: splits, training files, local LoRA and OpenAI fine-tuning jobs."""
