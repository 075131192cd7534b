//! Link settings Node addons need on some platforms (napi-build; nothing on Linux).

fn main() {
    napi_build::setup();
}
