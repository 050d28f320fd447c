#include "net/ethernet.h"

namespace gondolin::net {

Parsed<EthernetFrame> parse_ethernet(Bytes frame) {
  ByteReader r(frame);
  EthernetFrame f;
  if (!r.array(f.dst) || !r.array(f.src) || !r.u16(f.ether_type))
    return Parsed<EthernetFrame>::fail("short ethernet frame");
  // Values below 0x600 are 802.3 lengths, not types; nothing of ours speaks them.
  if (f.ether_type < 0x0600) return Parsed<EthernetFrame>::fail("802.3 frame");
  r.take(r.remaining(), f.payload);
  return f;
}

void write_ethernet_header(ByteWriter& w, const Mac& dst, const Mac& src, std::uint16_t ether_type) {
  w.bytes(dst);
  w.bytes(src);
  w.u16(ether_type);
}

}  // namespace gondolin::net
