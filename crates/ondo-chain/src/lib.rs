//! ondo-chain: prompt templates, runnables and sequential chains. Built in a later issue.
