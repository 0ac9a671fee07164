//! stepwise-serve (work in progress).
