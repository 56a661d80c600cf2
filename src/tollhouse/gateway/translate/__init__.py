"""Translation between OpenAI Chat Completions and Anthropic Messages, both ways, streams too.

Pure functions and small stateful stream translators over parsed JSON: no I/O, so the
pipeline can serve any client protocol from any upstream protocol.
"""

from tollhouse.gateway.translate.chat_to_messages import chat_request_to_messages, messages_response_to_chat
from tollhouse.gateway.translate.messages_stream_to_chat import MessagesStreamToChat
from tollhouse.gateway.translate.messages_to_chat import (
    ChatStreamToMessages,
    chat_response_to_messages,
    messages_request_to_chat,
)

__all__ = [
    "ChatStreamToMessages",
    "MessagesStreamToChat",
    "chat_request_to_messages",
    "chat_response_to_messages",
    "messages_request_to_chat",
    "messages_response_to_chat",
]
