"""QA: automatic checks of every call (rules as configuration), for reviewers to act on."""
