/*
 * raspi-release-agent deployer plugin ABI, version 1.
 *
 * A deployer plugin is a shared object the agent loads with dlopen(RTLD_NOW | RTLD_LOCAL).
 * It exports exactly one symbol, RRA_PLUGIN_ENTRY_SYMBOL, a function that receives the
 * host's global services and returns a table describing the deployer. Everything that
 * crosses this boundary is plain C: no exception, no C++ type, no allocator is shared.
 *
 * Versioning
 *   - Every struct starts with `struct_size`. A newer minor version only appends fields;
 *     a reader uses a field only when `struct_size` covers it.
 *   - `abi_major` must equal the host's RRA_ABI_MAJOR, or the plugin is refused.
 *   - A NULL hook means "unsupported".
 *
 * Ownership
 *   - Whoever allocates frees. Strings the host passes in are valid for the duration of
 *     the call only; copy what you keep. Strings in the table the plugin returns (name,
 *     description, version) must stay valid until the library is unloaded.
 *   - Output buffers (rra_text) are owned by the caller; the callee writes at most
 *     `capacity` bytes including the terminating NUL and truncates silently.
 *
 * Threading
 *   - Calls on one instance are serialized by the host: never two hooks of the same
 *     instance at once. Different instances (components) may run hooks in parallel, so
 *     plugin-global state must be thread-safe.
 *   - Host services may be called from any thread while a hook of that instance runs.
 *
 * Deadlines
 *   - Every hook call has a deadline (rra_host_instance.remaining_ms). When it passes the
 *     host raises the cancellation flag; a hook that has still not returned after a grace
 *     period is abandoned: its component is marked degraded and that instance is never
 *     called again (not even destroy). Long hooks must poll is_cancelled().
 *   - A hook that must not be interrupted half-way (an atomic switch) brackets that part
 *     with critical_begin()/critical_end(); the agent does not exit while one is open.
 */
#ifndef RASPI_RELEASE_DEPLOYER_H
#define RASPI_RELEASE_DEPLOYER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RRA_ABI_MAJOR 1
#define RRA_ABI_MINOR 0

/* The one symbol a plugin exports. Its type is rra_plugin_entry_fn. */
#define RRA_PLUGIN_ENTRY_SYMBOL "rra_plugin_entry_v1"

#if defined(__GNUC__)
#define RRA_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define RRA_PLUGIN_EXPORT
#endif

/* Result of every hook. */
typedef enum rra_status {
    RRA_OK = 0,
    /* Generic failure; the message says what went wrong. */
    RRA_ERROR = 1,
    /* The component's settings are invalid (create only). */
    RRA_INVALID_SETTINGS = 2,
    /* The hook stopped because is_cancelled() became true. */
    RRA_CANCELLED = 3,
    /* install: the artifact was refused before anything on the system was touched
     * (wrong format, hostile archive, not enough space). The host then reports the
     * failure without a rollback: the component is still on its previous release. */
    RRA_REFUSED = 4,
    /* install: the release is switched but its outcome is only known after the agent
     * restarts (self-update). The host stops verifying; the next run learns the verdict
     * from discover(). */
    RRA_PENDING_RESTART = 5,
    /* The hook is not supported by this deployer. */
    RRA_UNSUPPORTED = 6
} rra_status;

typedef enum rra_log_level {
    RRA_LOG_ERROR = 3,
    RRA_LOG_WARNING = 4,
    RRA_LOG_NOTICE = 5,
    RRA_LOG_INFO = 6,
    RRA_LOG_DEBUG = 7
} rra_log_level;

/* A caller-owned output buffer for text (error messages, tags). */
typedef struct rra_text {
    char* data;      /* never NULL; data[0] is NUL on entry */
    size_t capacity; /* bytes available including the terminating NUL; at least 256 */
} rra_text;

/* Opaque handles. */
typedef struct rra_instance rra_instance; /* the plugin's per-component state */
typedef struct rra_host_ctx rra_host_ctx; /* the host's per-component state */

/* Services the host gives one instance. Valid from create() until destroy() returns. */
typedef struct rra_host_instance {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    rra_host_ctx* ctx; /* pass back as the first argument of every service */

    /* One log line, attributed to the component. Never log secrets. */
    void (*log)(rra_host_ctx* ctx, rra_log_level level, const char* message);
    /* Progress of the running hook: percent in [0,100] or -1 when unknown. */
    void (*progress)(rra_host_ctx* ctx, int percent, const char* what);
    /* Nonzero once the running hook should stop (shutdown, deadline passed). */
    int (*is_cancelled)(rra_host_ctx* ctx);
    /* Milliseconds left before the running hook's deadline (0 when passed). */
    uint64_t (*remaining_ms)(rra_host_ctx* ctx);
    /* Download (or reuse) the verified release asset of another tag of this component,
     * e.g. to reinstall the previous .deb on rollback. On RRA_OK `path_out` holds an
     * absolute file path the plugin may read (and copy) but must not delete. */
    rra_status (*fetch_asset)(rra_host_ctx* ctx, const char* tag, rra_text* path_out,
                              rra_text* error);
    /* Bracket a section that must not be interrupted (the agent will not exit inside). */
    void (*critical_begin)(rra_host_ctx* ctx);
    void (*critical_end)(rra_host_ctx* ctx);
} rra_host_instance;

/* Everything a deployer learns about its component at create(). */
typedef struct rra_instance_config {
    uint32_t struct_size;
    const char* component;     /* component name, e.g. "web-ui" */
    const char* repo;          /* "owner/name" */
    const char* arch;          /* Debian architecture, e.g. "arm64" */
    const char* settings_json; /* the component's "settings" object as JSON ("{}" if absent) */
    const char* state_dir;     /* private, persistent directory under work_dir; exists */
    const char* runtime_dir;   /* agent.runtime_dir: tmpfs, for hand-over markers; exists */
    const char* config_path;   /* the agent's main config file */
    const char* agent_path;    /* absolute path of the running agent binary */
    const char* agent_version; /* version of the running agent */
    /* Nonzero when the instance is created only to validate settings (--check-config,
     * reload validation): create() must then not touch the system. */
    int validate_only;
} rra_instance_config;

/* What discover() reports. */
typedef enum rra_verdict_kind {
    RRA_VERDICT_NONE = 0,      /* no apply outcome pending from a previous run */
    RRA_VERDICT_PENDING = 1,   /* an apply awaits confirm() (self-update probation) */
    RRA_VERDICT_SUCCEEDED = 2, /* a previous run's apply is known to have succeeded */
    RRA_VERDICT_FAILED = 3     /* a previous run's apply is known to have failed */
} rra_verdict_kind;

typedef struct rra_discovery {
    uint32_t struct_size;
    int installed; /* out: nonzero when a release is applied */
    rra_text tag;  /* out: the applied tag when installed */
    /* A verdict handed across a restart (see RRA_PENDING_RESTART). */
    rra_verdict_kind verdict;
    rra_text verdict_tag;         /* out: the tag the verdict is about */
    rra_text verdict_from_tag;    /* out: the tag current before that apply ("" = none) */
    rra_text verdict_error;       /* out: why it failed (FAILED only) */
    uint64_t verdict_duration_ms; /* out: how long the apply took, when known */
} rra_discovery;

typedef struct rra_install_request {
    uint32_t struct_size;
    const char* tag;           /* the release being installed */
    const char* artifact_path; /* verified asset file; read it, copy it, never delete it */
    const char* from_tag;      /* the current tag before this apply, NULL when none */
    int is_downgrade;          /* nonzero for a pin that moves to an older tag */
} rra_install_request;

typedef struct rra_deployer {
    uint32_t struct_size; /* sizeof(rra_deployer) as the plugin was compiled */
    uint16_t abi_major;   /* RRA_ABI_MAJOR */
    uint16_t abi_minor;   /* RRA_ABI_MINOR */
    const char* name;     /* the component `type` this deployer serves, e.g. "tarball" */
    const char* description;
    const char* plugin_version;

    /* Validate `config->settings_json` and create an instance. Report every problem in
     * `error` naming the key (e.g. "settings.install_dir: required"); warn about unknown
     * keys through host->log. Must be cheap: no downloads, no installs. */
    rra_status (*create)(const rra_instance_config* config, const rra_host_instance* host,
                         rra_instance** out, rra_text* error);
    /* Free the instance. Never called while another hook of it runs. */
    void (*destroy)(rra_instance* instance);
    /* Which release is applied on the system now. Also the place to clean up leftovers
     * of an interrupted run (the host calls it once at startup before anything else). */
    rra_status (*discover)(rra_instance* instance, rra_discovery* out, rra_text* error);
    /* Apply the verified artifact of `request->tag`. On failure the plugin leaves the
     * system either untouched (RRA_REFUSED) or for rollback() to repair (RRA_ERROR). */
    rra_status (*install)(rra_instance* instance, const rra_install_request* request,
                          rra_text* error);
    /* Check that `tag` is healthy; may retry until `timeout_ms` has passed. */
    rra_status (*verify)(rra_instance* instance, const char* tag, uint32_t timeout_ms,
                         rra_text* error);
    /* Put the component back on `to_tag` (NULL: nothing installed) after `failed_tag`
     * failed to install or verify. */
    rra_status (*rollback)(rra_instance* instance, const char* to_tag, const char* failed_tag,
                           rra_text* error);
    /* Optional: the host reports itself healthy (connected to the proxy) while a verdict
     * is RRA_VERDICT_PENDING; the plugin commits the pending apply. */
    rra_status (*confirm)(rra_instance* instance, const char* tag, rra_text* error);
} rra_deployer;

/* Services the host gives the plugin as a whole. */
typedef struct rra_host_services {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    const char* agent_version;
    /* A log line not tied to a component. */
    void (*log)(rra_log_level level, const char* message);
} rra_host_services;

/* The entry point. Returns a table valid until the library is unloaded, or NULL when the
 * plugin cannot work with this host (it should log why). */
typedef const rra_deployer* (*rra_plugin_entry_fn)(const rra_host_services* host);

#ifdef __cplusplus
}
#endif

#endif /* RASPI_RELEASE_DEPLOYER_H */
