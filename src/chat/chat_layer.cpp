// The chat layer: Jinja chat templates (chat_template.h) and chat prompts.
