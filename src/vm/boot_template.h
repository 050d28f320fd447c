// Boot templates: a VM booted once per image and machine shape and saved at
// the agent's ready point; later starts resume it instead of booting.
//
// Theory of operation. The template VM boots with its RAM in a file mapped
// shared (`<image>/templates/<key>/ram`): every guest write lands in the
// file. At the ready point the agent goes quiet, QEMU pauses and migrates
// with x-ignore-shared, so the state file holds only devices and ROMs
// (~80 KiB, kept uncompressed); a cow root's disk is copied beside it. A start maps the
// same file *privately*: the guest sees the template's memory, pages come
// from the host's page cache on first touch and are shared by every clone
// until one writes them (copy-on-write). Nothing is read up front.
//
// Mounts: a start with mounts resumes a template made with
// kTemplateMountSlots file system channels (virtio-fs devices or
// virtio-serial ports named gondolin.fs<N>, none mounted); its mounts take
// the first slots, the rest stay spare (vfs::MountSet). A vhost-user
// back-end must map guest RAM itself, which it cannot do with a private
// mapping: a start with virtio-fs slots gets its own copy of the RAM file
// (vm/ram_image.h), mapped shared, instead.
//
// What differs per start is applied after the resume, never baked in: the
// Config frame (clock, entropy forced into the CRNG, hostname, MAC,
// machine-id), then everything host-side (network stack and policy, secret
// placeholders in the environment, session id). The user's MITM CA
// certificate is long-lived and public: the template has it installed, and
// its hash is part of the key.
//
// The key hashes everything the saved state depends on: gondolin and agent
// protocol, the image build, QEMU's version and binary, accelerator,
// machine, memory, CPUs, root mode and size, whether there is a network
// device, the host's TSC rate. A changed input means another key, so a stale
// template is never resumed; a damaged one is removed with one log line and
// made again. One process makes a given template at a time (flock); others
// boot cold meanwhile rather than wait.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gondolin/image.h"
#include "gondolin/vm.h"
#include "vm/accel.h"

namespace gondolin {
class VmImpl;
struct VmHooks;
}  // namespace gondolin

namespace gondolin::vm {

// The template's device state as QEMU wrote it, uncompressed (~80 KiB):
// every start reads it through a descriptor, with no decompressor to spawn.
inline constexpr const char* kTemplateStateFile = "state";
// A bigger one is damaged (it is handed to QEMU through a pipe of this size).
inline constexpr std::size_t kMaxTemplateStateBytes = 1u << 20;

struct TemplateKey {
  std::string shape;      // the inputs, as canonical JSON
  std::string id;         // 16 hex digits of its sha256: the directory name
  std::string qemu_line;  // this host's QEMU version line (one of the inputs)
};

// File system slots of a template: a start with mounts uses a template
// with this many, its mounts in the first ones.
constexpr std::size_t kTemplateMountSlots = 4;

// Why `o` must boot cold ("" if a template can serve it).
std::string template_unsuitable(const VmOptions& o, const VmHooks& hooks);

// The slots of the template for mounts of these (resolved) transports: none
// without mounts; else kTemplateMountSlots, the mounts' transports first,
// then virtio-fs if any mount uses it, else virtio-serial.
std::vector<vfs::FsTransport> template_mount_slots(const std::vector<vfs::FsTransport>& mounts);

// `mitm_ca_pem`: the certificate the guest is to trust ("" without network);
// the template has it installed. `slots`: template_mount_slots.
TemplateKey template_key(const Image& image, const VmOptions& o, Accel accel, const std::string& mitm_ca_pem,
                         const std::vector<vfs::FsTransport>& slots = {});

struct TemplateStart {
  std::unique_ptr<VmImpl> vm;  // ready; null: boot cold
  // Why a template was wanted but not used: worth a warning once the cold
  // boot has worked (if it fails too, its own error says it all).
  std::string failure;
};

// A VM started from the template for `o`, or why not. Makes the template
// first if there is none. Throws only what a cold boot would throw too
// (bad options).
TemplateStart start_from_template(const Image& image, const VmOptions& o, const VmHooks& hooks,
                                  const AccelChoice& accel, std::chrono::milliseconds timeout);

// Makes the template start_from_template would use for `o`, if there is
// none (`gondolin build` prepares the default one). Returns "" once it is
// there, else why `o` boots cold. Throws gondolin::Error if making it fails.
std::string prepare_template(const Image& image, const VmOptions& o, const AccelChoice& accel,
                             std::chrono::milliseconds timeout);

}  // namespace gondolin::vm
