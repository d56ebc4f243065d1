{
  "variables": {
    # Linux only: elsewhere nothing is compiled, the install still succeeds, and loading the
    # package fails with BAKERY_NATIVE_UNAVAILABLE.
    "bakery_target_type%": "none",
    "conditions": [["OS=='linux'", {"bakery_target_type%": "loadable_module"}]]
  },
  "targets": [
    {
      "target_name": "bakery_native",
      "type": "<(bakery_target_type)",
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "src/native/bakery_native.cc",
            "src/native/async_wait.cc",
            "src/native/errors.cc",
            "src/native/futex.cc",
            "src/native/mapping.cc"
          ],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "defines": [
            "NAPI_VERSION=8",
            "NAPI_DISABLE_CPP_EXCEPTIONS",
            "NODE_ADDON_API_DISABLE_DEPRECATED",
            "_GNU_SOURCE"
          ],
          "cflags": ["-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
          "cflags_cc": ["-std=c++17", "-fno-exceptions", "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
          "cflags_cc!": ["-fexceptions", "-std=gnu++17"],
          "ldflags": [
            "-Wl,-z,nodelete",
            "-pthread"
          ]
        }]
      ]
    }
  ]
}
