"""Rating read-outs: turn an LLM's answer (text, logprobs or samples) into a rating."""
