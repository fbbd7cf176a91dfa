"""Wire codecs (sans-I/O): each provider's frames ⇄ the unified events of `pivox.core.events`.

`openai` speaks the OpenAI Realtime API, GA and beta dialects.
"""
