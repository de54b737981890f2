//! The `From` conversions between a binding string enum (`Js…`, declared
//! literally with `#[napi(string_enum)]`, which napi-derive must see) and the
//! core's enum it mirrors, written from one variant list.

/// `mirror!(Js <=> core::path::Enum { A, B })`: both ways, variants named
/// alike; `Js => core::…` or `core::… => Js`: one way;
/// `Js => Option<core::…> { None: Auto; Some: A, B }`: the binding's
/// `Auto` is the core's "none chosen".
macro_rules! mirror {
    ($js:ident <=> $($core:ident)::+ { $($v:ident),+ $(,)? }) => {
        mirror!($js => $($core)::+ { $($v),+ });
        mirror!($($core)::+ => $js { $($v),+ });
    };
    ($js:ident => Option<$($core:ident)::+> { None: $none:ident; Some: $($v:ident),+ $(,)? }) => {
        impl From<$js> for Option<$($core)::+> {
            fn from(v: $js) -> Self {
                type Core = $($core)::+;
                match v {
                    $js::$none => None,
                    $($js::$v => Some(Core::$v),)+
                }
            }
        }
    };
    ($js:ident => $($core:ident)::+ { $($v:ident),+ $(,)? }) => {
        impl From<$js> for $($core)::+ {
            fn from(v: $js) -> Self {
                type Core = $($core)::+;
                match v {
                    $($js::$v => Core::$v,)+
                }
            }
        }
    };
    ($($core:ident)::+ => $js:ident { $($v:ident),+ $(,)? }) => {
        impl From<$($core)::+> for $js {
            fn from(v: $($core)::+) -> Self {
                type Core = $($core)::+;
                match v {
                    $(Core::$v => $js::$v,)+
                }
            }
        }
    };
}

pub(crate) use mirror;
