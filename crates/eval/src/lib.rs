//! stepwise-eval (work in progress).
