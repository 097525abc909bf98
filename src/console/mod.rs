//! The console: [`state`] has one owner (the event loop in [`run`]), changes
//! only through [`update`] (the pure reducer: `update(state, action) ->
//! effects`), and [`view`] only reads it to draw. Effects are the IO the
//! reducer asks for (calls to the backend, quitting); their outcomes come
//! back as actions.

pub mod run;
pub mod state;
pub mod update;
pub mod view;
