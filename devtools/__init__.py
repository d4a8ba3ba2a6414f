"""Development and test scaffolding, not part of the product: the OpenAI-protocol stub server
(``openai_stub``) and the tiny random-model builder (``tiny_model``) used by tests, benches and
local experiments."""
