"""The playbook language: format v1 models, the located YAML loader, templating and offline checks."""
