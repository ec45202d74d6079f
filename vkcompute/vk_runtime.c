/* Vulkan runtime: loader, instance, device, memory, pipelines, dispatch.
 *
 * The Vulkan loader is opened with dlopen at run time, so invedit starts (and
 * falls back to its CPU backend with a clear message) on machines without
 * libvulkan or without any Vulkan driver.
 */
#define VK_NO_PROTOTYPES
#include "vkcompute/vk_runtime.h"
#include "vkcompute/vk_validation.h"

#include <dlfcn.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- function tables --------------------------------------------------------- */

#define VK_GLOBAL_FUNCS(X)                                                                                             \
    X(vkCreateInstance)                                                                                                \
    X(vkEnumerateInstanceVersion)

#define VK_INSTANCE_FUNCS(X)                                                                                           \
    X(vkDestroyInstance)                                                                                               \
    X(vkEnumeratePhysicalDevices)                                                                                      \
    X(vkGetPhysicalDeviceProperties)                                                                                   \
    X(vkGetPhysicalDeviceProperties2)                                                                                  \
    X(vkGetPhysicalDeviceFeatures2)                                                                                    \
    X(vkGetPhysicalDeviceMemoryProperties)                                                                             \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                                        \
    X(vkEnumerateDeviceExtensionProperties)                                                                            \
    X(vkCreateDevice)                                                                                                  \
    X(vkGetDeviceProcAddr)

#define VK_DEVICE_FUNCS(X)                                                                                             \
    X(vkDestroyDevice)                                                                                                 \
    X(vkGetDeviceQueue)                                                                                                \
    X(vkCreateBuffer)                                                                                                  \
    X(vkDestroyBuffer)                                                                                                 \
    X(vkGetBufferMemoryRequirements)                                                                                   \
    X(vkAllocateMemory)                                                                                                \
    X(vkFreeMemory)                                                                                                    \
    X(vkBindBufferMemory)                                                                                              \
    X(vkMapMemory)                                                                                                     \
    X(vkUnmapMemory)                                                                                                   \
    X(vkGetBufferDeviceAddress)                                                                                        \
    X(vkCreateShaderModule)                                                                                            \
    X(vkDestroyShaderModule)                                                                                           \
    X(vkCreatePipelineLayout)                                                                                          \
    X(vkDestroyPipelineLayout)                                                                                         \
    X(vkCreateComputePipelines)                                                                                        \
    X(vkDestroyPipeline)                                                                                               \
    X(vkCreateCommandPool)                                                                                             \
    X(vkDestroyCommandPool)                                                                                            \
    X(vkAllocateCommandBuffers)                                                                                        \
    X(vkBeginCommandBuffer)                                                                                            \
    X(vkEndCommandBuffer)                                                                                              \
    X(vkResetCommandBuffer)                                                                                            \
    X(vkCmdBindPipeline)                                                                                               \
    X(vkCmdPushConstants)                                                                                              \
    X(vkCmdDispatch)                                                                                                   \
    X(vkCmdPipelineBarrier)                                                                                            \
    X(vkCmdCopyBuffer)                                                                                                 \
    X(vkCmdWriteTimestamp)                                                                                             \
    X(vkCmdResetQueryPool)                                                                                             \
    X(vkCreateQueryPool)                                                                                               \
    X(vkDestroyQueryPool)                                                                                              \
    X(vkGetQueryPoolResults)                                                                                           \
    X(vkQueueSubmit)                                                                                                   \
    X(vkCreateFence)                                                                                                   \
    X(vkDestroyFence)                                                                                                  \
    X(vkWaitForFences)                                                                                                 \
    X(vkResetFences)                                                                                                   \
    X(vkDeviceWaitIdle)

#define DECLARE_PFN(name) PFN_##name name;
typedef struct vk_fns {
    VK_GLOBAL_FUNCS(DECLARE_PFN)
    VK_INSTANCE_FUNCS(DECLARE_PFN)
    VK_DEVICE_FUNCS(DECLARE_PFN)
} vk_fns;

static void *loader_handle;
static PFN_vkGetInstanceProcAddr loader_gipa;
static char loader_error[256];
static pthread_once_t loader_once = PTHREAD_ONCE_INIT;

static void loader_open(void) {
    const char *names[] = {"libvulkan.so.1", "libvulkan.so"};
    for (size_t i = 0; i < 2 && !loader_handle; i++) loader_handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!loader_handle) {
        snprintf(loader_error, sizeof loader_error, "the Vulkan loader (libvulkan.so.1) is not installed");
        return;
    }
    loader_gipa = (PFN_vkGetInstanceProcAddr)dlsym(loader_handle, "vkGetInstanceProcAddr");
    if (!loader_gipa) snprintf(loader_error, sizeof loader_error, "libvulkan.so.1 has no vkGetInstanceProcAddr");
}

static const char *vk_result_str(VkResult r) {
    switch (r) {
        case VK_SUCCESS: return "VK_SUCCESS";
        case VK_NOT_READY: return "VK_NOT_READY";
        case VK_TIMEOUT: return "VK_TIMEOUT";
        case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
        case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
        case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
        case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
        case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
        case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
        case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
        case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver installed?)";
        case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
        case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
        case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
        default: return "VkResult error";
    }
}

static ie_status status_of(VkResult r) {
    switch (r) {
        case VK_ERROR_OUT_OF_HOST_MEMORY:
        case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        case VK_ERROR_OUT_OF_POOL_MEMORY: return IE_ERR_NOMEM;
        default: return IE_ERR_DEVICE;
    }
}

#define SET_ERR(...) (err ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)

/* An instance with its function table (shared by listing and runtime). */
typedef struct vk_instance {
    VkInstance instance;
    vk_fns fn;
    vk_validation_setup validation; /* INVEDIT_VK_VALIDATION */
} vk_instance;

static ie_status instance_create(vk_instance *vi, char *err, size_t errlen) {
    memset(vi, 0, sizeof *vi);
    pthread_once(&loader_once, loader_open);
    if (!loader_gipa) {
        SET_ERR("%s", loader_error);
        return IE_ERR_NODEVICE;
    }
#define LOAD_GLOBAL(name) vi->fn.name = (PFN_##name)loader_gipa(NULL, #name);
    VK_GLOBAL_FUNCS(LOAD_GLOBAL)
#undef LOAD_GLOBAL
    uint32_t version = VK_API_VERSION_1_0;
    if (vi->fn.vkEnumerateInstanceVersion) vi->fn.vkEnumerateInstanceVersion(&version);
    if (version < VK_API_VERSION_1_2) {
        SET_ERR("the Vulkan loader supports only API %u.%u; invedit needs 1.2", VK_API_VERSION_MAJOR(version),
                VK_API_VERSION_MINOR(version));
        return IE_ERR_NODEVICE;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "invedit",
        .applicationVersion = 1,
        .pEngineName = "invedit",
        .engineVersion = 1,
        .apiVersion = VK_API_VERSION_1_2,
    };
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    bool validate = vk_validation_prepare(loader_gipa, &vi->validation);
    if (validate) {
        ci.pNext = vi->validation.chain;
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = vi->validation.layers;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = vi->validation.extensions;
    }
    VkResult r = vi->fn.vkCreateInstance(&ci, NULL, &vi->instance);
    if (r != VK_SUCCESS) {
        SET_ERR("vkCreateInstance failed: %s", vk_result_str(r));
        return IE_ERR_NODEVICE;
    }
#define LOAD_INSTANCE(name) vi->fn.name = (PFN_##name)loader_gipa(vi->instance, #name);
    VK_INSTANCE_FUNCS(LOAD_INSTANCE)
#undef LOAD_INSTANCE
    if (validate) vk_validation_attach(loader_gipa, vi->instance, &vi->validation);
    return IE_OK;
}

static void instance_destroy(vk_instance *vi) {
    if (vi->instance) {
        vk_validation_detach(loader_gipa, vi->instance, &vi->validation);
        vi->fn.vkDestroyInstance(vi->instance, NULL);
    }
    vi->instance = VK_NULL_HANDLE;
}

static ie_device_type device_type_of(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return IE_DEVICE_DISCRETE;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return IE_DEVICE_INTEGRATED;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return IE_DEVICE_VIRTUAL;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return IE_DEVICE_CPU;
        default: return IE_DEVICE_OTHER;
    }
}

/* Everything invedit asks of a device. */
typedef struct device_caps {
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceVulkan11Properties p11;
    VkPhysicalDeviceVulkan12Properties p12;
    VkPhysicalDeviceMaintenance3Properties m3;
    VkPhysicalDeviceFeatures2 f;
    VkPhysicalDeviceVulkan11Features f11;
    VkPhysicalDeviceVulkan12Features f12;
    VkPhysicalDeviceMemoryProperties mem;
    bool has_size_control; /* VK_EXT_subgroup_size_control */
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT ssc;
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT fssc;
} device_caps;

static bool has_device_extension(const vk_instance *vi, VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vi->fn.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    bool found = false;
    if (e && vi->fn.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

static void query_caps(const vk_instance *vi, VkPhysicalDevice pd, device_caps *c) {
    memset(c, 0, sizeof *c);
    c->m3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
    c->p12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES;
    c->p12.pNext = &c->m3;
    c->p11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES;
    c->p11.pNext = &c->p12;
    vi->fn.vkGetPhysicalDeviceProperties(pd, &c->props);
    bool v12 = c->props.apiVersion >= VK_API_VERSION_1_2;
    c->has_size_control = v12 && has_device_extension(vi, pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    if (c->has_size_control) {
        c->ssc.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT;
        c->m3.pNext = &c->ssc;
        c->fssc.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT;
        c->f12.pNext = &c->fssc;
    }
    if (v12) {
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &c->p11};
        vi->fn.vkGetPhysicalDeviceProperties2(pd, &p2);
        c->f12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
        c->f11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
        c->f11.pNext = &c->f12;
        c->f.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
        c->f.pNext = &c->f11;
        vi->fn.vkGetPhysicalDeviceFeatures2(pd, &c->f);
    }
    vi->fn.vkGetPhysicalDeviceMemoryProperties(pd, &c->mem);
}

static void fill_info(const device_caps *c, int index, ie_device_info *d) {
    memset(d, 0, sizeof *d);
    d->index = index;
    snprintf(d->name, sizeof d->name, "%s", c->props.deviceName);
    d->type = device_type_of(c->props.deviceType);
    d->api_version = c->props.apiVersion;
    d->vendor_id = c->props.vendorID;
    d->device_id = c->props.deviceID;
    snprintf(d->driver, sizeof d->driver, "%.60s %.60s", c->p12.driverName, c->p12.driverInfo);
    for (uint32_t i = 0; i < c->mem.memoryHeapCount; i++)
        if (c->mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            d->device_local_bytes += c->mem.memoryHeaps[i].size;
    d->max_storage_buffer_range = c->props.limits.maxStorageBufferRange;
    d->max_allocation_size = c->m3.maxMemoryAllocationSize;
    d->max_buffer_size = c->m3.maxMemoryAllocationSize; /* maintenance4's maxBufferSize is 1.3 */
    d->max_shared_memory = c->props.limits.maxComputeSharedMemorySize;
    d->subgroup_size = c->p11.subgroupSize;
    d->min_subgroup_size = d->max_subgroup_size = d->subgroup_size;
    d->subgroup_size_control = c->has_size_control && c->fssc.subgroupSizeControl &&
                               (c->ssc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT);
    if (c->has_size_control && c->ssc.minSubgroupSize && c->ssc.maxSubgroupSize) {
        d->min_subgroup_size = c->ssc.minSubgroupSize;
        d->max_subgroup_size = c->ssc.maxSubgroupSize;
        d->max_workgroup_subgroups = c->ssc.maxComputeWorkgroupSubgroups;
    }
    d->max_workgroup_invocations = c->props.limits.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) d->max_workgroup_size[i] = c->props.limits.maxComputeWorkGroupSize[i];
    d->fp16 = c->f12.shaderFloat16 && c->f11.storageBuffer16BitAccess;
    d->usable = true;
    const char *why = NULL;
    if (c->props.apiVersion < VK_API_VERSION_1_2) why = "Vulkan 1.2 not supported";
    else if (!c->f12.bufferDeviceAddress) why = "no bufferDeviceAddress";
    else if (!c->f12.scalarBlockLayout) why = "no scalarBlockLayout";
    else if (!d->fp16) why = "no 16-bit storage / shaderFloat16";
    else if (c->props.limits.maxPushConstantsSize < 128) why = "push constants under 128 bytes";
    /* the elementwise and norm shaders use workgroups of 256 x 1 x 1 and the
     * transpose 32 x 8; GEMM tiles and attention adapt to the limits below */
    else if (d->max_workgroup_invocations < 256 || d->max_workgroup_size[0] < 256 || d->max_workgroup_size[1] < 8)
        why = "compute workgroups of 256 invocations not supported";
    else if (d->max_shared_memory < 16384) why = "under 16 KiB of compute shared memory";
    if (why) {
        d->usable = false;
        snprintf(d->why_unusable, sizeof d->why_unusable, "%s", why);
    }
}

int ie_vulkan_list_devices(ie_device_info *out, int max, char *err, size_t errlen) {
    vk_instance vi;
    if (instance_create(&vi, err, errlen) != IE_OK) return -1;
    uint32_t n = 0;
    vi.fn.vkEnumeratePhysicalDevices(vi.instance, &n, NULL);
    VkPhysicalDevice *pds = calloc(n ? n : 1, sizeof *pds);
    if (!pds) {
        instance_destroy(&vi);
        SET_ERR("out of memory");
        return -1;
    }
    vi.fn.vkEnumeratePhysicalDevices(vi.instance, &n, pds);
    for (uint32_t i = 0; i < n && (int)i < max; i++) {
        device_caps c;
        query_caps(&vi, pds[i], &c);
        fill_info(&c, (int)i, &out[i]);
    }
    free(pds);
    instance_destroy(&vi);
    return (int)n;
}

/* --- runtime state ------------------------------------------------------------- */

#define MAX_BLOCKS 256
#define MAX_PENDING 64 /* ranges tracked between barriers */
#define RING 3         /* command buffers in flight */
#define DISPATCHES_PER_SUBMIT 128
#define MEM_ALIGN 256

typedef struct free_range {
    uint64_t offset, size;
} free_range;

typedef struct mem_block {
    VkBuffer buffer;
    VkDeviceMemory memory;
    VkDeviceAddress addr;
    uint64_t size;
    void *mapped;
    free_range *free; /* sorted by offset, coalesced */
    int nfree, capfree;
    bool dedicated;
} mem_block;

struct vk_kernel {
    VkPipeline pipeline;
};

typedef struct cmd_slot {
    VkCommandBuffer cb;
    VkFence fence;
    bool in_flight;
} cmd_slot;

struct vk_runtime {
    vk_instance vi;
    VkPhysicalDevice pd;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    device_caps caps;
    ie_device_info info;

    uint32_t required_subgroup; /* INVEDIT_VK_SUBGROUP_SIZE, 0 = the driver's choice */

    uint32_t mem_type;
    bool mappable; /* device memory is host-visible and coherent */
    uint64_t block_limit, next_block_size;
    mem_block blocks[MAX_BLOCKS];
    uint64_t in_use, peak;
    pthread_mutex_t lock;

    VkPipelineLayout layout;
    GHashTable *modules; /* shader name -> VkShaderModule */
    GHashTable *kernels; /* "name|spec..." -> vk_kernel* */

    VkCommandPool pool;
    cmd_slot ring[RING];
    int cur; /* slot being recorded, or -1 */
    int next;
    int dispatches;
    VkPipeline bound;
    vk_range pend_w[MAX_PENDING], pend_r[MAX_PENDING];
    int npend_w, npend_r;
    ie_status deferred; /* first error from a submit, reported by sync */
    char deferred_msg[256];

    /* staging for devices whose memory isn't host-visible */
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    void *staging_ptr;
    uint64_t staging_size;

    VkQueryPool queries;
    bool timing;
    double timer_wall;
};

const ie_device_info *vk_runtime_info(const vk_runtime *rt) { return &rt->info; }
uint32_t vk_runtime_max_groups(const vk_runtime *rt) { return rt->caps.props.limits.maxComputeWorkGroupCount[0]; }

static int find_memory_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want,
                            VkMemoryPropertyFlags avoid) {
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want &&
            !(mp->memoryTypes[i].propertyFlags & avoid))
            return (int)i;
    return -1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Creates a buffer + memory of `size` bytes with a device address. */
static VkResult make_buffer(vk_runtime *rt, uint64_t size, uint32_t mem_type, bool map, VkBuffer *buf,
                            VkDeviceMemory *mem, VkDeviceAddress *addr, void **ptr) {
    vk_fns *f = &rt->vi.fn;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
                 VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = f->vkCreateBuffer(rt->device, &bci, NULL, buf);
    if (r != VK_SUCCESS) return r;
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(rt->device, *buf, &req);
    if (!(req.memoryTypeBits & (1u << mem_type))) {
        f->vkDestroyBuffer(rt->device, *buf, NULL);
        return VK_ERROR_FEATURE_NOT_PRESENT;
    }
    VkMemoryAllocateFlagsInfo flags = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
                                       .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT};
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .pNext = &flags,
                                .allocationSize = req.size,
                                .memoryTypeIndex = mem_type};
    r = f->vkAllocateMemory(rt->device, &mai, NULL, mem);
    if (r != VK_SUCCESS) {
        f->vkDestroyBuffer(rt->device, *buf, NULL);
        return r;
    }
    r = f->vkBindBufferMemory(rt->device, *buf, *mem, 0);
    if (r == VK_SUCCESS && map) r = f->vkMapMemory(rt->device, *mem, 0, VK_WHOLE_SIZE, 0, ptr);
    if (r != VK_SUCCESS) {
        f->vkDestroyBuffer(rt->device, *buf, NULL);
        f->vkFreeMemory(rt->device, *mem, NULL);
        return r;
    }
    VkBufferDeviceAddressInfo ai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO, .buffer = *buf};
    *addr = f->vkGetBufferDeviceAddress(rt->device, &ai);
    return VK_SUCCESS;
}

/* --- runtime setup ----------------------------------------------------------------
 * runtime_init runs these steps in order; each fills its part of the runtime
 * or returns an error with a message, and vk_runtime_destroy releases
 * whatever the steps before a failure created. */

/* Physical device `index`, or the preferred one when index < 0 (a CPU
 * implementation such as lavapipe included: whoever asks the runtime for a
 * device wants Vulkan); fills rt->pd, rt->caps and rt->info. */
static ie_status pick_device(vk_runtime *rt, int index, char *err, size_t errlen) {
    vk_fns *f = &rt->vi.fn;
    uint32_t n = 0;
    f->vkEnumeratePhysicalDevices(rt->vi.instance, &n, NULL);
    if (n == 0) {
        SET_ERR("no Vulkan device found (install a driver, e.g. mesa-vulkan-drivers)");
        return IE_ERR_NODEVICE;
    }
    VkPhysicalDevice pds[32];
    if (n > 32) n = 32;
    f->vkEnumeratePhysicalDevices(rt->vi.instance, &n, pds);
    if (index < 0) {
        ie_device_info infos[32];
        for (uint32_t i = 0; i < n; i++) {
            device_caps c;
            query_caps(&rt->vi, pds[i], &c);
            fill_info(&c, (int)i, &infos[i]);
        }
        index = ie_vulkan_preferred_device(infos, (int)n, false);
        if (index < 0) {
            SET_ERR("none of the %u Vulkan devices has what invedit needs (Vulkan 1.2, "
                    "bufferDeviceAddress, 16-bit storage)",
                    n);
            return IE_ERR_NODEVICE;
        }
    }
    if ((uint32_t)index >= n) {
        SET_ERR("Vulkan device %d does not exist (%u found; see 'invedit devices')", index, n);
        return IE_ERR_NODEVICE;
    }
    rt->pd = pds[index];
    query_caps(&rt->vi, rt->pd, &rt->caps);
    fill_info(&rt->caps, index, &rt->info);
    if (!rt->info.usable) {
        SET_ERR("Vulkan device %d (%s) is not usable: %s", index, rt->info.name, rt->info.why_unusable);
        return IE_ERR_NODEVICE;
    }
    return IE_OK;
}

/* The queue: the first family with compute. *timestamps: whether that family
 * can time work (vk_runtime_timer_begin/end). */
static ie_status pick_queue_family(vk_runtime *rt, bool *timestamps, char *err, size_t errlen) {
    vk_fns *f = &rt->vi.fn;
    uint32_t nq = 0;
    f->vkGetPhysicalDeviceQueueFamilyProperties(rt->pd, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    f->vkGetPhysicalDeviceQueueFamilyProperties(rt->pd, &nq, qf);
    rt->queue_family = UINT32_MAX;
    for (uint32_t i = 0; i < nq; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            rt->queue_family = i;
            break;
        }
    if (rt->queue_family == UINT32_MAX) {
        SET_ERR("Vulkan device %s has no compute queue", rt->info.name);
        return IE_ERR_NODEVICE;
    }
    *timestamps = qf[rt->queue_family].timestampValidBits > 0 && rt->caps.props.limits.timestampComputeAndGraphics;
    return IE_OK;
}

/* INVEDIT_VK_SUBGROUP_SIZE=N: every pipeline is built with subgroup size N
 * (VK_EXT_subgroup_size_control), to test the shaders at each size the
 * driver offers. Sets rt->required_subgroup and the sizes in rt->info. */
static ie_status apply_subgroup_override(vk_runtime *rt, char *err, size_t errlen) {
    const char *sg_env = getenv("INVEDIT_VK_SUBGROUP_SIZE");
    if (!sg_env || !*sg_env) return IE_OK;
    char *end;
    unsigned long v = strtoul(sg_env, &end, 10);
    const ie_device_info *d = &rt->info;
    if (*end || v == 0 || (v & (v - 1)) || !d->subgroup_size_control || v < d->min_subgroup_size ||
        v > d->max_subgroup_size) {
        SET_ERR("INVEDIT_VK_SUBGROUP_SIZE=%s: %s offers %s subgroup sizes %u..%u", sg_env, d->name,
                d->subgroup_size_control ? "required" : "no required", d->min_subgroup_size, d->max_subgroup_size);
        return IE_ERR_NODEVICE;
    }
    if (256 > (uint64_t)v * d->max_workgroup_subgroups) { /* the 256-wide shaders */
        SET_ERR("INVEDIT_VK_SUBGROUP_SIZE=%s: a 256-invocation workgroup would need %lu subgroups, over "
                "%s's maxComputeWorkgroupSubgroups (%u)",
                sg_env, 256 / v, d->name, d->max_workgroup_subgroups);
        return IE_ERR_NODEVICE;
    }
    rt->required_subgroup = (uint32_t)v;
    rt->info.subgroup_size = rt->info.min_subgroup_size = rt->info.max_subgroup_size = (uint32_t)v;
    return IE_OK;
}

/* The logical device with the features the shaders use (fill_info checked
 * that they are there), its function table, and its one queue. */
static ie_status create_device(vk_runtime *rt, char *err, size_t errlen) {
    vk_fns *f = &rt->vi.fn;
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT fssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
        .subgroupSizeControl = VK_TRUE,
    };
    const char *dev_ext[] = {VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME};
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .pNext = rt->required_subgroup ? &fssc : NULL,
        .bufferDeviceAddress = VK_TRUE,
        .scalarBlockLayout = VK_TRUE,
        .shaderFloat16 = VK_TRUE,
        .storageBuffer8BitAccess = rt->caps.f12.storageBuffer8BitAccess,
    };
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &f12,
        .storageBuffer16BitAccess = VK_TRUE,
    };
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    f2.features.shaderInt64 = rt->caps.f.features.shaderInt64;
    f2.features.shaderFloat64 = rt->caps.f.features.shaderFloat64;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = rt->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = &f2,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = rt->required_subgroup ? 1u : 0u,
                              .ppEnabledExtensionNames = dev_ext};
    VkResult r = f->vkCreateDevice(rt->pd, &dci, NULL, &rt->device);
    if (r != VK_SUCCESS) {
        SET_ERR("vkCreateDevice on %s failed: %s", rt->info.name, vk_result_str(r));
        return IE_ERR_NODEVICE;
    }
#define LOAD_DEVICE(name) f->name = (PFN_##name)f->vkGetDeviceProcAddr(rt->device, #name);
    VK_DEVICE_FUNCS(LOAD_DEVICE)
#undef LOAD_DEVICE
    f->vkGetDeviceQueue(rt->device, rt->queue_family, 0, &rt->queue);
    return IE_OK;
}

/* The memory type for tensors: a host-visible coherent device-local type on
 * UMA/CPU devices (direct mapping), else device-local with a staging buffer;
 * and the sizes of the blocks the allocator takes from it. */
static ie_status choose_memory_type(vk_runtime *rt, char *err, size_t errlen) {
    vk_fns *f = &rt->vi.fn;
    VkBuffer probe;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = 4096,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    if (f->vkCreateBuffer(rt->device, &bci, NULL, &probe) != VK_SUCCESS) {
        SET_ERR("vkCreateBuffer failed on %s", rt->info.name);
        return IE_ERR_DEVICE;
    }
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(rt->device, probe, &req);
    f->vkDestroyBuffer(rt->device, probe, NULL);
    const VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int mt = -1;
    bool uma = rt->info.type == IE_DEVICE_INTEGRATED || rt->info.type == IE_DEVICE_CPU;
    if (uma) mt = find_memory_type(&rt->caps.mem, req.memoryTypeBits, local | host, 0);
    if (mt >= 0) {
        rt->mappable = true;
    } else {
        mt = find_memory_type(&rt->caps.mem, req.memoryTypeBits, local, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
        if (mt < 0) mt = find_memory_type(&rt->caps.mem, req.memoryTypeBits, local, 0);
        if (mt < 0) {
            mt = find_memory_type(&rt->caps.mem, req.memoryTypeBits, host, 0);
            rt->mappable = mt >= 0;
        }
    }
    if (mt < 0) {
        SET_ERR("no suitable memory type on %s", rt->info.name);
        return IE_ERR_DEVICE;
    }
    rt->mem_type = (uint32_t)mt;
    uint64_t limit = rt->info.max_allocation_size ? rt->info.max_allocation_size : ((uint64_t)1 << 30);
    rt->block_limit = limit < ((uint64_t)1 << 30) ? limit : ((uint64_t)1 << 30);
    rt->next_block_size = (uint64_t)64 << 20;
    if (rt->next_block_size > rt->block_limit) rt->next_block_size = rt->block_limit;
    return IE_OK;
}

/* The pipeline layout every kernel shares (128 bytes of push constants, no
 * descriptor sets) and the caches vk_kernel_get fills. */
static ie_status create_pipeline_layout(vk_runtime *rt, char *err, size_t errlen) {
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 128};
    VkPipelineLayoutCreateInfo plci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                       .pushConstantRangeCount = 1,
                                       .pPushConstantRanges = &pcr};
    VkResult r = rt->vi.fn.vkCreatePipelineLayout(rt->device, &plci, NULL, &rt->layout);
    if (r != VK_SUCCESS) {
        SET_ERR("vkCreatePipelineLayout failed: %s", vk_result_str(r));
        return status_of(r);
    }
    rt->modules = g_hash_table_new(g_str_hash, g_str_equal);
    rt->kernels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return IE_OK;
}

/* The command pool, the RING command buffers with their fences, and the
 * timestamp query pool when the queue can time work. */
static ie_status create_command_ring(vk_runtime *rt, bool timestamps, char *err, size_t errlen) {
    vk_fns *f = &rt->vi.fn;
    VkCommandPoolCreateInfo cpci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                    .queueFamilyIndex = rt->queue_family};
    VkResult r = f->vkCreateCommandPool(rt->device, &cpci, NULL, &rt->pool);
    if (r != VK_SUCCESS) {
        SET_ERR("vkCreateCommandPool failed: %s", vk_result_str(r));
        return status_of(r);
    }
    for (int i = 0; i < RING; i++) {
        VkCommandBufferAllocateInfo cbai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                            .commandPool = rt->pool,
                                            .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                            .commandBufferCount = 1};
        VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        r = f->vkAllocateCommandBuffers(rt->device, &cbai, &rt->ring[i].cb);
        if (r == VK_SUCCESS) r = f->vkCreateFence(rt->device, &fci, NULL, &rt->ring[i].fence);
        if (r != VK_SUCCESS) {
            SET_ERR("command buffer setup failed: %s", vk_result_str(r));
            return status_of(r);
        }
    }
    if (timestamps) {
        VkQueryPoolCreateInfo qpci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2};
        if (f->vkCreateQueryPool(rt->device, &qpci, NULL, &rt->queries) != VK_SUCCESS)
            rt->queries = VK_NULL_HANDLE; /* the timer falls back to the wall clock */
    }
    return IE_OK;
}

static ie_status runtime_init(vk_runtime *rt, int index, char *err, size_t errlen) {
    bool timestamps = false;
    ie_status s = instance_create(&rt->vi, err, errlen);
    if (!s) s = pick_device(rt, index, err, errlen);
    if (!s) s = pick_queue_family(rt, &timestamps, err, errlen);
    if (!s) s = apply_subgroup_override(rt, err, errlen);
    if (!s) s = create_device(rt, err, errlen);
    if (!s) s = choose_memory_type(rt, err, errlen);
    if (!s) s = create_pipeline_layout(rt, err, errlen);
    if (!s) s = create_command_ring(rt, timestamps, err, errlen);
    return s;
}

vk_runtime *vk_runtime_create(int index, ie_device_info *info_out, char *err, size_t errlen) {
    vk_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        SET_ERR("out of host memory");
        return NULL;
    }
    /* before any step, so that vk_runtime_destroy can undo a partial setup */
    rt->cur = -1;
    pthread_mutex_init(&rt->lock, NULL);
    if (runtime_init(rt, index, err, errlen) != IE_OK) {
        vk_runtime_destroy(rt);
        return NULL;
    }
    if (info_out) *info_out = rt->info;
    return rt;
}

static void wait_slot(vk_runtime *rt, int i) {
    vk_fns *f = &rt->vi.fn;
    if (!rt->ring[i].in_flight) return;
    VkResult r = f->vkWaitForFences(rt->device, 1, &rt->ring[i].fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS && rt->deferred == IE_OK) {
        rt->deferred = status_of(r);
        snprintf(rt->deferred_msg, sizeof rt->deferred_msg, "waiting for the GPU failed: %s", vk_result_str(r));
    }
    f->vkResetFences(rt->device, 1, &rt->ring[i].fence);
    rt->ring[i].in_flight = false;
}

void vk_runtime_destroy(vk_runtime *rt) {
    if (!rt) return;
    vk_fns *f = &rt->vi.fn;
    if (rt->device) {
        char e[8];
        vk_runtime_sync(rt, e, sizeof e);
        f->vkDeviceWaitIdle(rt->device);
        for (int i = 0; i < RING; i++)
            if (rt->ring[i].fence) f->vkDestroyFence(rt->device, rt->ring[i].fence, NULL);
        if (rt->pool) f->vkDestroyCommandPool(rt->device, rt->pool, NULL);
        if (rt->queries) f->vkDestroyQueryPool(rt->device, rt->queries, NULL);
        if (rt->kernels) {
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, rt->kernels);
            while (g_hash_table_iter_next(&it, &k, &v)) {
                vk_kernel *kern = v;
                f->vkDestroyPipeline(rt->device, kern->pipeline, NULL);
                free(kern);
            }
            g_hash_table_destroy(rt->kernels);
        }
        if (rt->modules) {
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, rt->modules);
            while (g_hash_table_iter_next(&it, &k, &v)) f->vkDestroyShaderModule(rt->device, (VkShaderModule)v, NULL);
            g_hash_table_destroy(rt->modules);
        }
        if (rt->layout) f->vkDestroyPipelineLayout(rt->device, rt->layout, NULL);
        for (int i = 0; i < MAX_BLOCKS; i++) {
            mem_block *b = &rt->blocks[i];
            if (!b->buffer) continue;
            f->vkDestroyBuffer(rt->device, b->buffer, NULL);
            f->vkFreeMemory(rt->device, b->memory, NULL);
            free(b->free);
        }
        if (rt->staging) {
            f->vkDestroyBuffer(rt->device, rt->staging, NULL);
            f->vkFreeMemory(rt->device, rt->staging_mem, NULL);
        }
        f->vkDestroyDevice(rt->device, NULL);
    }
    pthread_mutex_destroy(&rt->lock);
    instance_destroy(&rt->vi);
    free(rt);
}

/* --- memory ----------------------------------------------------------------- */

static bool block_take(mem_block *b, uint64_t size, uint64_t *offset) {
    for (int i = 0; i < b->nfree; i++) {
        free_range *fr = &b->free[i];
        if (fr->size < size) continue;
        *offset = fr->offset;
        fr->offset += size;
        fr->size -= size;
        if (fr->size == 0) {
            memmove(fr, fr + 1, (size_t)(b->nfree - i - 1) * sizeof *fr);
            b->nfree--;
        }
        return true;
    }
    return false;
}

static bool block_give(mem_block *b, uint64_t offset, uint64_t size) {
    int i = 0;
    while (i < b->nfree && b->free[i].offset < offset) i++;
    bool merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == offset;
    bool merge_next = i < b->nfree && offset + size == b->free[i].offset;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], (size_t)(b->nfree - i - 1) * sizeof *b->free);
        b->nfree--;
    } else if (merge_prev) {
        b->free[i - 1].size += size;
    } else if (merge_next) {
        b->free[i].offset = offset;
        b->free[i].size += size;
    } else {
        if (b->nfree == b->capfree) {
            int cap = b->capfree ? 2 * b->capfree : 16;
            free_range *nf = realloc(b->free, (size_t)cap * sizeof *nf);
            if (!nf) return false;
            b->free = nf;
            b->capfree = cap;
        }
        memmove(&b->free[i + 1], &b->free[i], (size_t)(b->nfree - i) * sizeof *b->free);
        b->free[i].offset = offset;
        b->free[i].size = size;
        b->nfree++;
    }
    return true;
}

static ie_status block_new(vk_runtime *rt, uint64_t size, bool dedicated, int *index, char *err, size_t errlen) {
    int slot = -1;
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (!rt->blocks[i].buffer) {
            slot = i;
            break;
        }
    if (slot < 0) {
        SET_ERR("too many device memory blocks (%d)", MAX_BLOCKS);
        return IE_ERR_NOMEM;
    }
    mem_block *b = &rt->blocks[slot];
    memset(b, 0, sizeof *b);
    VkResult r = make_buffer(rt, size, rt->mem_type, rt->mappable, &b->buffer, &b->memory, &b->addr, &b->mapped);
    if (r != VK_SUCCESS) {
        memset(b, 0, sizeof *b);
        SET_ERR("allocating %.1f MiB of device memory on %s failed: %s", (double)size / 1048576.0, rt->info.name,
                vk_result_str(r));
        return status_of(r) == IE_ERR_NOMEM ? IE_ERR_NOMEM : IE_ERR_DEVICE;
    }
    b->size = size;
    b->dedicated = dedicated;
    if (!dedicated && !block_give(b, 0, size)) {
        SET_ERR("out of host memory");
        return IE_ERR_NOMEM;
    }
    *index = slot;
    return IE_OK;
}

ie_status vk_mem_alloc(vk_runtime *rt, uint64_t size, vk_mem *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint64_t asize = (size + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
    if (asize == 0) asize = MEM_ALIGN;
    pthread_mutex_lock(&rt->lock);
    ie_status s = IE_OK;
    int bi = -1;
    uint64_t offset = 0;
    if (asize > rt->block_limit) {
        uint64_t max = rt->info.max_allocation_size;
        if (max && asize > max) {
            SET_ERR("a tensor of %.1f MiB exceeds %s's largest buffer (%.1f MiB)", (double)size / 1048576.0,
                    rt->info.name, (double)max / 1048576.0);
            s = IE_ERR_NOMEM;
        } else {
            s = block_new(rt, asize, true, &bi, err, errlen);
        }
    } else {
        for (int i = 0; i < MAX_BLOCKS && bi < 0; i++)
            if (rt->blocks[i].buffer && !rt->blocks[i].dedicated && block_take(&rt->blocks[i], asize, &offset)) bi = i;
        if (bi < 0) {
            uint64_t bs = rt->next_block_size;
            while (bs < asize) bs *= 2;
            if (bs > rt->block_limit) bs = rt->block_limit;
            s = block_new(rt, bs, false, &bi, err, errlen);
            if (s == IE_OK) {
                if (rt->next_block_size < rt->block_limit) rt->next_block_size *= 2;
                block_take(&rt->blocks[bi], asize, &offset);
            }
        }
    }
    if (s == IE_OK) {
        mem_block *b = &rt->blocks[bi];
        out->block = (uint32_t)bi;
        out->offset = offset;
        out->size = asize;
        out->addr = b->addr + offset;
        out->mapped = b->mapped ? (char *)b->mapped + offset : NULL;
        rt->in_use += asize;
        if (rt->in_use > rt->peak) rt->peak = rt->in_use;
    }
    pthread_mutex_unlock(&rt->lock);
    return s;
}

void vk_mem_free(vk_runtime *rt, vk_mem *m) {
    if (!m || !m->size) return;
    pthread_mutex_lock(&rt->lock);
    mem_block *b = &rt->blocks[m->block];
    rt->in_use -= m->size;
    if (b->dedicated) {
        /* recorded work may still use it: wait before releasing */
        char e[8];
        vk_runtime_sync(rt, e, sizeof e);
        rt->vi.fn.vkDestroyBuffer(rt->device, b->buffer, NULL);
        rt->vi.fn.vkFreeMemory(rt->device, b->memory, NULL);
        free(b->free);
        memset(b, 0, sizeof *b);
    } else {
        block_give(b, m->offset, m->size);
    }
    memset(m, 0, sizeof *m);
    pthread_mutex_unlock(&rt->lock);
}

void vk_runtime_memory(const vk_runtime *rt, uint64_t *in_use, uint64_t *peak) {
    if (in_use) *in_use = rt->in_use;
    if (peak) *peak = rt->peak;
}

void vk_runtime_reset_peak(vk_runtime *rt) { rt->peak = rt->in_use; }

/* --- command recording ------------------------------------------------------------ */

static ie_status begin_recording(vk_runtime *rt, char *err, size_t errlen) {
    if (rt->cur >= 0) return IE_OK;
    int i = rt->next;
    wait_slot(rt, i);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    rt->vi.fn.vkResetCommandBuffer(rt->ring[i].cb, 0);
    VkResult r = rt->vi.fn.vkBeginCommandBuffer(rt->ring[i].cb, &bi);
    if (r != VK_SUCCESS) {
        SET_ERR("vkBeginCommandBuffer failed: %s", vk_result_str(r));
        return status_of(r);
    }
    rt->cur = i;
    rt->next = (i + 1) % RING;
    rt->bound = VK_NULL_HANDLE;
    rt->dispatches = 0;
    return IE_OK;
}

static ie_status submit(vk_runtime *rt, char *err, size_t errlen) {
    if (rt->cur < 0) return IE_OK;
    cmd_slot *s = &rt->ring[rt->cur];
    /* device writes become visible to the host (mapped reads after the fence) */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    rt->vi.fn.vkCmdPipelineBarrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                                   VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    rt->cur = -1;
    VkResult r = rt->vi.fn.vkEndCommandBuffer(s->cb);
    if (r == VK_SUCCESS) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &s->cb};
        r = rt->vi.fn.vkQueueSubmit(rt->queue, 1, &si, s->fence);
    }
    if (r != VK_SUCCESS) {
        SET_ERR("submitting GPU work failed: %s", vk_result_str(r));
        return status_of(r);
    }
    s->in_flight = true;
    return IE_OK;
}

ie_status vk_runtime_sync(vk_runtime *rt, char *err, size_t errlen) {
    ie_status s = submit(rt, err, errlen);
    for (int i = 0; i < RING; i++) wait_slot(rt, i);
    if (s == IE_OK && rt->deferred != IE_OK) {
        s = rt->deferred;
        SET_ERR("%s", rt->deferred_msg);
        rt->deferred = IE_OK;
    }
    return s;
}

static bool overlaps(const vk_range *a, const vk_range *b) {
    return a->addr < b->addr + b->size && b->addr < a->addr + a->size;
}

static bool any_overlap(const vk_range *list, int n, const vk_range *r) {
    for (int i = 0; i < n; i++)
        if (overlaps(&list[i], r)) return true;
    return false;
}

static void barrier(vk_runtime *rt) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    rt->vi.fn.vkCmdPipelineBarrier(
        rt->ring[rt->cur].cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    rt->npend_w = rt->npend_r = 0;
}

/* Inserts a barrier when this access conflicts with one since the last barrier
 * (read-after-write, write-after-write, write-after-read), then records it. */
static void track(vk_runtime *rt, const vk_range *reads, int nreads, const vk_range *writes, int nwrites) {
    bool hazard = rt->npend_w + nwrites > MAX_PENDING || rt->npend_r + nreads > MAX_PENDING;
    for (int i = 0; i < nreads && !hazard; i++) hazard = any_overlap(rt->pend_w, rt->npend_w, &reads[i]);
    for (int i = 0; i < nwrites && !hazard; i++)
        hazard = any_overlap(rt->pend_w, rt->npend_w, &writes[i]) || any_overlap(rt->pend_r, rt->npend_r, &writes[i]);
    if (hazard) barrier(rt);
    for (int i = 0; i < nreads; i++) rt->pend_r[rt->npend_r++] = reads[i];
    for (int i = 0; i < nwrites; i++) rt->pend_w[rt->npend_w++] = writes[i];
}

/* --- kernels ------------------------------------------------------------------- */

static const vk_shader_blob *find_blob(const char *name) {
    for (size_t i = 0; i < vk_shader_blob_count; i++)
        if (!strcmp(vk_shader_blobs[i].name, name)) return &vk_shader_blobs[i];
    return NULL;
}

vk_kernel *vk_kernel_get(vk_runtime *rt, const char *shader, const uint32_t *spec, int nspec, char *err,
                         size_t errlen) {
    char key[256];
    size_t off = (size_t)snprintf(key, sizeof key, "%s", shader);
    for (int i = 0; i < nspec && off < sizeof key; i++)
        off += (size_t)snprintf(key + off, sizeof key - off, "|%u", spec[i]);
    pthread_mutex_lock(&rt->lock);
    vk_kernel *k = g_hash_table_lookup(rt->kernels, key);
    if (k) {
        pthread_mutex_unlock(&rt->lock);
        return k;
    }
    vk_fns *f = &rt->vi.fn;
    VkShaderModule mod = g_hash_table_lookup(rt->modules, shader);
    if (!mod) {
        const vk_shader_blob *blob = find_blob(shader);
        if (!blob) {
            SET_ERR("no shader named '%s' is built in", shader);
            pthread_mutex_unlock(&rt->lock);
            return NULL;
        }
        VkShaderModuleCreateInfo smci = {
            .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = blob->size_bytes, .pCode = blob->code};
        VkResult r = f->vkCreateShaderModule(rt->device, &smci, NULL, &mod);
        if (r != VK_SUCCESS) {
            SET_ERR("shader '%s': vkCreateShaderModule failed: %s", shader, vk_result_str(r));
            pthread_mutex_unlock(&rt->lock);
            return NULL;
        }
        g_hash_table_insert(rt->modules, (gpointer)blob->name, mod);
        /* tests/vk-checks.sh validation checks that every shader ran */
        if (vk_validation_mode()) fprintf(stderr, "invedit: shader under validation: %s\n", shader);
    }
    VkSpecializationMapEntry entries[32];
    if (nspec > 32) nspec = 32;
    for (int i = 0; i < nspec; i++) {
        entries[i].constantID = (uint32_t)i;
        entries[i].offset = (uint32_t)(i * 4);
        entries[i].size = 4;
    }
    VkSpecializationInfo si = {
        .mapEntryCount = (uint32_t)nspec, .pMapEntries = entries, .dataSize = (size_t)nspec * 4, .pData = spec};
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT rss = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
        .requiredSubgroupSize = rt->required_subgroup,
    };
    VkComputePipelineCreateInfo cpci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .pNext = rt->required_subgroup ? &rss : NULL,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = nspec ? &si : NULL},
        .layout = rt->layout,
    };
    VkPipeline pipe;
    VkResult r = f->vkCreateComputePipelines(rt->device, VK_NULL_HANDLE, 1, &cpci, NULL, &pipe);
    if (r != VK_SUCCESS) {
        SET_ERR("shader '%s': vkCreateComputePipelines failed: %s", shader, vk_result_str(r));
        pthread_mutex_unlock(&rt->lock);
        return NULL;
    }
    k = calloc(1, sizeof *k);
    if (!k) {
        f->vkDestroyPipeline(rt->device, pipe, NULL);
        SET_ERR("out of host memory");
        pthread_mutex_unlock(&rt->lock);
        return NULL;
    }
    k->pipeline = pipe;
    g_hash_table_insert(rt->kernels, g_strdup(key), k);
    pthread_mutex_unlock(&rt->lock);
    return k;
}

ie_status vk_dispatch(vk_runtime *rt, vk_kernel *k, const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                      uint32_t gz, const vk_range *reads, int nreads, const vk_range *writes, int nwrites, char *err,
                      size_t errlen) {
    const uint32_t *lim = rt->caps.props.limits.maxComputeWorkGroupCount;
    if (push_size > 128) {
        SET_ERR("push constants of %u bytes exceed 128", push_size);
        return IE_ERR_ARG;
    }
    if (gx == 0 || gy == 0 || gz == 0) return IE_OK;
    if (gx > lim[0] || gy > lim[1] || gz > lim[2]) {
        SET_ERR("dispatch of %u×%u×%u workgroups exceeds the device limit %u×%u×%u", gx, gy, gz, lim[0], lim[1],
                lim[2]);
        return IE_ERR_ARG;
    }
    ie_status s = begin_recording(rt, err, errlen);
    if (s) return s;
    VkCommandBuffer cb = rt->ring[rt->cur].cb;
    track(rt, reads, nreads, writes, nwrites);
    if (rt->bound != k->pipeline) {
        rt->vi.fn.vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
        rt->bound = k->pipeline;
    }
    if (push_size) rt->vi.fn.vkCmdPushConstants(cb, rt->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    rt->vi.fn.vkCmdDispatch(cb, gx, gy, gz);
    if (++rt->dispatches >= DISPATCHES_PER_SUBMIT && !rt->timing) return submit(rt, err, errlen);
    return IE_OK;
}

/* --- host transfers ------------------------------------------------------------- */

static ie_status ensure_staging(vk_runtime *rt, uint64_t size, char *err, size_t errlen) {
    if (rt->staging_size >= size) return IE_OK;
    vk_fns *f = &rt->vi.fn;
    if (rt->staging) {
        f->vkDestroyBuffer(rt->device, rt->staging, NULL);
        f->vkFreeMemory(rt->device, rt->staging_mem, NULL);
        rt->staging = VK_NULL_HANDLE;
        rt->staging_size = 0;
    }
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = size,
                              .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                                       VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT};
    VkBuffer probe;
    if (f->vkCreateBuffer(rt->device, &bci, NULL, &probe) != VK_SUCCESS) {
        SET_ERR("staging buffer creation failed");
        return IE_ERR_DEVICE;
    }
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(rt->device, probe, &req);
    f->vkDestroyBuffer(rt->device, probe, NULL);
    int mt = find_memory_type(&rt->caps.mem, req.memoryTypeBits,
                              VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                  VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
                              0);
    if (mt < 0)
        mt = find_memory_type(&rt->caps.mem, req.memoryTypeBits,
                              VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
    if (mt < 0) {
        SET_ERR("no host-visible memory for staging on %s", rt->info.name);
        return IE_ERR_DEVICE;
    }
    VkDeviceAddress addr;
    VkResult r = make_buffer(rt, size, (uint32_t)mt, true, &rt->staging, &rt->staging_mem, &addr, &rt->staging_ptr);
    if (r != VK_SUCCESS) {
        rt->staging = VK_NULL_HANDLE;
        SET_ERR("allocating a %.1f MiB staging buffer failed: %s", (double)size / 1048576.0, vk_result_str(r));
        return status_of(r);
    }
    rt->staging_size = size;
    return IE_OK;
}

/* Copies between the staging buffer and a block, and waits. */
static ie_status staged_copy(vk_runtime *rt, const vk_mem *m, uint64_t offset, uint64_t n, bool to_device, char *err,
                             size_t errlen) {
    ie_status s = begin_recording(rt, err, errlen);
    if (s) return s;
    VkCommandBuffer cb = rt->ring[rt->cur].cb;
    barrier(rt);
    VkBufferCopy region = {.size = n};
    if (to_device) {
        region.srcOffset = 0;
        region.dstOffset = m->offset + offset;
        rt->vi.fn.vkCmdCopyBuffer(cb, rt->staging, rt->blocks[m->block].buffer, 1, &region);
    } else {
        region.srcOffset = m->offset + offset;
        region.dstOffset = 0;
        rt->vi.fn.vkCmdCopyBuffer(cb, rt->blocks[m->block].buffer, rt->staging, 1, &region);
    }
    barrier(rt);
    return vk_runtime_sync(rt, err, errlen);
}

#define STAGING_CHUNK ((uint64_t)64 << 20)

ie_status vk_mem_write(vk_runtime *rt, const vk_mem *m, uint64_t offset, const void *src, uint64_t n, char *err,
                       size_t errlen) {
    if (offset + n > m->size) {
        SET_ERR("write of %llu bytes at %llu overruns an allocation of %llu", (unsigned long long)n,
                (unsigned long long)offset, (unsigned long long)m->size);
        return IE_ERR_ARG;
    }
    /* recorded work may still read or write this memory: finish it first */
    ie_status s = vk_runtime_sync(rt, err, errlen);
    if (s) return s;
    if (m->mapped) {
        memcpy((char *)m->mapped + offset, src, n);
        return IE_OK;
    }
    s = ensure_staging(rt, n < STAGING_CHUNK ? n : STAGING_CHUNK, err, errlen);
    for (uint64_t done = 0; s == IE_OK && done < n; done += STAGING_CHUNK) {
        uint64_t c = n - done < STAGING_CHUNK ? n - done : STAGING_CHUNK;
        memcpy(rt->staging_ptr, (const char *)src + done, c);
        s = staged_copy(rt, m, offset + done, c, true, err, errlen);
    }
    return s;
}

ie_status vk_mem_read(vk_runtime *rt, const vk_mem *m, uint64_t offset, void *dst, uint64_t n, char *err,
                      size_t errlen) {
    if (offset + n > m->size) {
        SET_ERR("read of %llu bytes at %llu overruns an allocation of %llu", (unsigned long long)n,
                (unsigned long long)offset, (unsigned long long)m->size);
        return IE_ERR_ARG;
    }
    ie_status s = vk_runtime_sync(rt, err, errlen);
    if (s) return s;
    if (m->mapped) {
        memcpy(dst, (const char *)m->mapped + offset, n);
        return IE_OK;
    }
    s = ensure_staging(rt, n < STAGING_CHUNK ? n : STAGING_CHUNK, err, errlen);
    for (uint64_t done = 0; s == IE_OK && done < n; done += STAGING_CHUNK) {
        uint64_t c = n - done < STAGING_CHUNK ? n - done : STAGING_CHUNK;
        s = staged_copy(rt, m, offset + done, c, false, err, errlen);
        if (s == IE_OK) memcpy((char *)dst + done, rt->staging_ptr, c);
    }
    return s;
}

/* --- timing ----------------------------------------------------------------------- */

void vk_runtime_timer_begin(vk_runtime *rt) {
    char e[8];
    vk_runtime_sync(rt, e, sizeof e);
    rt->timer_wall = now_seconds();
    if (!rt->queries) return;
    if (begin_recording(rt, e, sizeof e) != IE_OK) return;
    VkCommandBuffer cb = rt->ring[rt->cur].cb;
    rt->vi.fn.vkCmdResetQueryPool(cb, rt->queries, 0, 2);
    rt->vi.fn.vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, rt->queries, 0);
    rt->timing = true;
}

double vk_runtime_timer_end(vk_runtime *rt) {
    char e[8];
    if (!rt->timing || rt->cur < 0) {
        vk_runtime_sync(rt, e, sizeof e);
        rt->timing = false;
        return now_seconds() - rt->timer_wall;
    }
    rt->vi.fn.vkCmdWriteTimestamp(rt->ring[rt->cur].cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, rt->queries, 1);
    rt->timing = false;
    double wall_end;
    vk_runtime_sync(rt, e, sizeof e);
    wall_end = now_seconds();
    uint64_t ts[2];
    VkResult r = rt->vi.fn.vkGetQueryPoolResults(rt->device, rt->queries, 0, 2, sizeof ts, ts, sizeof ts[0],
                                                 VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS || ts[1] < ts[0]) return wall_end - rt->timer_wall;
    return (double)(ts[1] - ts[0]) * (double)rt->caps.props.limits.timestampPeriod * 1e-9;
}
