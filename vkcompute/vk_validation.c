/* Vulkan validation on request (INVEDIT_VK_VALIDATION), for the tests.
 *
 * INVEDIT_VK_VALIDATION=1 (or "all") makes every Vulkan instance invedit
 * creates load VK_LAYER_KHRONOS_validation with synchronization validation and
 * GPU-assisted validation (buffer-device-address bounds checks inside the
 * shaders) turned on; "sync" without GPU-assisted validation (much faster
 * on lavapipe), "core" without either. A
 * VK_EXT_debug_utils messenger prints each warning or error the layer reports
 * to stderr. When the process exits after any such message (or when the layer
 * was asked for and is missing) the exit status becomes 1, so a test that
 * otherwise passed fails: `meson test --setup vkvalidation` relies on that.
 */
#define VK_NO_PROTOTYPES
#include "vkcompute/vk_validation.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int messages;
static atomic_int exit_hook_set;

static void exit_hook(void) {
    int n = atomic_load(&messages);
    if (n > 0) {
        fprintf(stderr, "invedit: %d Vulkan validation message%s (INVEDIT_VK_VALIDATION): failing\n", n,
                n == 1 ? "" : "s");
        fflush(stderr);
        _exit(1);
    }
}

static void count_message(void) {
    atomic_fetch_add(&messages, 1);
    if (!atomic_exchange(&exit_hook_set, 1)) atexit(exit_hook);
}

int vk_validation_message_count(void) { return atomic_load(&messages); }

int vk_validation_mode(void) {
    const char *e = getenv("INVEDIT_VK_VALIDATION");
    if (!e || !*e || !strcmp(e, "0")) return 0;
    if (!strcmp(e, "core")) return 1;
    if (!strcmp(e, "sync")) return 3;
    return 2;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)types;
    (void)user;
    /* Newer layers report their own set-up as warnings (GPU-assisted
     * validation forcing device features it needs, advice to run it without
     * core checks): notes about the layer, not about invedit's use of Vulkan. */
    const char *id = data && data->pMessageIdName ? data->pMessageIdName : "";
    const char *msg = data && data->pMessage ? data->pMessage : "";
    if (!(severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) &&
        (!strcmp(id, "VALIDATION-SETTINGS") || strstr(msg, "Internal Warning:"))) {
        static atomic_int notes;
        if (atomic_fetch_add(&notes, 1) == 0)
            fprintf(stderr, "invedit: (validation layer set-up notes are not counted, e.g.: [%s] %.200s)\n", id, msg);
        return VK_FALSE;
    }
    const char *sev = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning";
    fprintf(stderr, "invedit: Vulkan validation %s: [%s] %s\n", sev,
            data && data->pMessageIdName ? data->pMessageIdName : "?", data && data->pMessage ? data->pMessage : "");
    count_message();
    return VK_FALSE;
}

bool vk_validation_prepare(PFN_vkGetInstanceProcAddr gipa, vk_validation_setup *s) {
    memset(s, 0, sizeof *s);
    int mode = vk_validation_mode();
    if (!mode) return false;
    PFN_vkEnumerateInstanceLayerProperties enum_layers =
        (PFN_vkEnumerateInstanceLayerProperties)gipa(NULL, "vkEnumerateInstanceLayerProperties");
    uint32_t n = 0;
    bool found = false;
    if (enum_layers && enum_layers(&n, NULL) == VK_SUCCESS && n) {
        VkLayerProperties *lp = calloc(n, sizeof *lp);
        if (lp && enum_layers(&n, lp) == VK_SUCCESS)
            for (uint32_t i = 0; i < n; i++)
                if (!strcmp(lp[i].layerName, "VK_LAYER_KHRONOS_validation")) found = true;
        free(lp);
    }
    if (!found) {
        fprintf(stderr, "invedit: INVEDIT_VK_VALIDATION is set but VK_LAYER_KHRONOS_validation is not "
                        "installed (Debian: vulkan-validationlayers)\n");
        count_message();
        return false;
    }
    s->layers[0] = "VK_LAYER_KHRONOS_validation";
    s->extensions[0] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    s->messenger_info = (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity =
            VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message,
    };
    int ne = 0;
    if (mode >= 2) s->enables[ne++] = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    if (mode == 2) {
        s->enables[ne++] = VK_VALIDATION_FEATURE_ENABLE_GPU_ASSISTED_EXT;
        s->enables[ne++] = VK_VALIDATION_FEATURE_ENABLE_GPU_ASSISTED_RESERVE_BINDING_SLOT_EXT;
    }
    s->features = (VkValidationFeaturesEXT){
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .pNext = &s->messenger_info,
        .enabledValidationFeatureCount = (uint32_t)ne,
        .pEnabledValidationFeatures = s->enables,
    };
    s->chain = &s->features;
    return true;
}

void vk_validation_attach(PFN_vkGetInstanceProcAddr gipa, VkInstance instance, vk_validation_setup *s) {
    PFN_vkCreateDebugUtilsMessengerEXT create =
        (PFN_vkCreateDebugUtilsMessengerEXT)gipa(instance, "vkCreateDebugUtilsMessengerEXT");
    if (!create || create(instance, &s->messenger_info, NULL, &s->messenger) != VK_SUCCESS) {
        fprintf(stderr, "invedit: INVEDIT_VK_VALIDATION: could not install the debug messenger\n");
        count_message();
        s->messenger = VK_NULL_HANDLE;
    }
}

void vk_validation_detach(PFN_vkGetInstanceProcAddr gipa, VkInstance instance, vk_validation_setup *s) {
    if (!s->messenger) return;
    PFN_vkDestroyDebugUtilsMessengerEXT destroy =
        (PFN_vkDestroyDebugUtilsMessengerEXT)gipa(instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy) destroy(instance, s->messenger, NULL);
    s->messenger = VK_NULL_HANDLE;
}
