//! stepwise-annotate (work in progress).
