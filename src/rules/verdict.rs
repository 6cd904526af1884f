//! The verdict on an ECS event or a hook invocation, as a value. Pure.
