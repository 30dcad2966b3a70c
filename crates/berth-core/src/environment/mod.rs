//! Environments: what a user asks for, and the templates and policy applied to it.
