// Gives the sidecar's free malloc pages back to the system: glibc's malloc_trim(0), which Node does
// not expose. Under load OpenSSL and Node's sockets allocate and free megabytes; glibc keeps what
// was freed (fragmented, so its trim threshold, which returns memory only from the top of an
// arena, does not) and the pages stay resident after the load is gone. sidecar/process/memory.ts
// calls trim() when the data path falls quiet; docs/benchmarks.md has the measurements.
//
// Node-API only (node_api.h), so the addon does not depend on one Node's V8 ABI.
#include <malloc.h>
#include <node_api.h>

// trim(): malloc_trim(0) over every arena; returns whether any memory went back to the system.
static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  if (napi_get_boolean(env, malloc_trim(0) != 0, &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT(/* env, exports */) {
  napi_value trim;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &trim) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", trim) != napi_ok) return NULL;
  return exports;
}
