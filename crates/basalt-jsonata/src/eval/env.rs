//! Variable scopes and the per-evaluation context (clock reading, random source, depth guard).

use crate::value::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

pub(crate) struct Frame {
    vars: RefCell<HashMap<String, Value>>,
    parent: Option<Env>,
}

pub(crate) type Env = Rc<Frame>;

impl Frame {
    pub fn root() -> Env {
        Rc::new(Frame {
            vars: RefCell::new(HashMap::new()),
            parent: None,
        })
    }

    pub fn child(parent: &Env) -> Env {
        Rc::new(Frame {
            vars: RefCell::new(HashMap::new()),
            parent: Some(parent.clone()),
        })
    }

    pub fn bind(&self, name: &str, value: Value) {
        self.vars.borrow_mut().insert(name.to_string(), value);
    }

    pub fn lookup(&self, name: &str) -> Option<Value> {
        let mut frame = self;
        loop {
            if let Some(v) = frame.vars.borrow().get(name) {
                return Some(v.clone());
            }
            match &frame.parent {
                Some(p) => frame = p,
                None => return crate::functions::builtin(name),
            }
        }
    }
}

/// The deepest evaluation nesting allowed before `D1011` (keeps the native stack bounded).
pub(crate) const MAX_DEPTH: usize = 1200;

pub(crate) struct Ctx {
    pub timestamp: i64,
    pub random: Box<dyn Fn() -> f64>,
    pub depth: Cell<usize>,
    pub max_depth: usize,
    pub deadline: Option<std::time::Instant>,
    pub ticks: Cell<u32>,
}

impl Ctx {
    pub fn new(functions: &crate::Functions) -> Ctx {
        let timestamp = match &functions.clock {
            Some(clock) => clock(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        };
        let random: Box<dyn Fn() -> f64> = match &functions.random {
            Some(r) => {
                let r = r.clone();
                Box::new(move || r())
            }
            None => Box::new(default_random()),
        };
        Ctx {
            timestamp,
            random,
            depth: Cell::new(0),
            max_depth: functions.max_depth.unwrap_or(MAX_DEPTH).min(MAX_DEPTH),
            deadline: functions.timeout.map(|t| std::time::Instant::now() + t),
            ticks: Cell::new(0),
        }
    }
}

/// xorshift64* seeded from the clock: `$random()` without a host source needs no crypto.
fn default_random() -> impl Fn() -> f64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
        | 1;
    let state = Cell::new(seed);
    move || {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}
