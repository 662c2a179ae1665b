"""Plan -> text: terminal (rich), JSON (the saved plan), Markdown (pull-request comments). No side effects."""
