"""What an item is beyond one text input: conversations, tools, JSON answers, retrieved context and
the calls an item accepts. Loading lives in `workbench.task.dataset`; these modules say what each field means."""
