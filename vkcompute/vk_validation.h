/* Vulkan validation on request (INVEDIT_VK_VALIDATION): see vk_validation.c. */
#ifndef INVEDIT_VK_VALIDATION_H
#define INVEDIT_VK_VALIDATION_H

#include <stdbool.h>
#include <vulkan/vulkan.h>

typedef struct vk_validation_setup {
    const char *layers[1];
    const char *extensions[1];
    VkValidationFeatureEnableEXT enables[3];
    VkValidationFeaturesEXT features;
    VkDebugUtilsMessengerCreateInfoEXT messenger_info;
    const void *chain; /* pNext for VkInstanceCreateInfo (NULL when off) */
    VkDebugUtilsMessengerEXT messenger;
} vk_validation_setup;

/* 0 off, 1 the layer alone ("core"), 2 layer + synchronization + GPU-assisted
 * (any other value), 3 layer + synchronization ("sync"). */
int vk_validation_mode(void);

/* Fills `s` for instance creation when INVEDIT_VK_VALIDATION asks for it.
 * Returns false when validation is off, or the layer is missing (then the
 * process will exit with status 1). */
bool vk_validation_prepare(PFN_vkGetInstanceProcAddr gipa, vk_validation_setup *s);
/* Installs / removes the messenger on a created instance. */
void vk_validation_attach(PFN_vkGetInstanceProcAddr gipa, VkInstance instance, vk_validation_setup *s);
void vk_validation_detach(PFN_vkGetInstanceProcAddr gipa, VkInstance instance, vk_validation_setup *s);

/* Warnings and errors reported so far in this process. */
int vk_validation_message_count(void);

#endif
