// The mesh matrix as an SVG heatmap. Colour encodes the p50 RTT on a log
// scale (a same-zone 60 µs and a cross-zone 1.2 ms both stay readable);
// zone blocks are outlined so the in-zone diagonal blocks stand out.
#include <algorithm>
#include <cmath>

#include "latency/mesh.h"

namespace cloudkeep::latency {

namespace {

std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// Green (fast) through yellow to red (slow), t in [0, 1].
std::string Colour(double t) {
  t = std::clamp(t, 0.0, 1.0);
  int r = t < 0.5 ? static_cast<int>(510 * t) : 255;
  int g = t < 0.5 ? 200 : static_cast<int>(200 * (1 - t) * 2);
  return fmt::format("rgb({},{},60)", r, g);
}

}  // namespace

std::string MeshHeatmapSvg(const MeshResult& m) {
  size_t n = m.peers.size();
  const int cell = 64, left = 180, top = 150;
  double lo = 1e300, hi = 0;
  for (const auto& p : m.pairs)
    if (p.rtt.received) {
      lo = std::min(lo, p.rtt.p50_us);
      hi = std::max(hi, p.rtt.p50_us);
    }
  if (hi <= 0) lo = hi = 1;
  double llo = std::log(std::max(lo, 0.001)), lhi = std::log(std::max(hi, 0.001));
  int w = left + cell * static_cast<int>(n) + 40, h = top + cell * static_cast<int>(n) + 70;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Round-trip time p50, from row "
      "to column</text>\n",
      w, h);
  for (size_t j = 0; j < n; j++)
    s += fmt::format("<text transform=\"translate({},{}) rotate(-60)\">{} ({})</text>\n",
                     left + cell * j + cell / 2, top - 6, Escape(m.peers[j].name),
                     Escape(m.peers[j].zone));
  for (size_t i = 0; i < n; i++)
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} ({})</text>\n", left - 6,
                     top + cell * i + cell / 2 + 4, Escape(m.peers[i].name),
                     Escape(m.peers[i].zone));
  for (const auto& p : m.pairs) {
    int x = left + cell * static_cast<int>(p.to), y = top + cell * static_cast<int>(p.from);
    std::string fill = "#bbbbbb", label = "lost";
    if (p.rtt.received) {
      double t = lhi > llo ? (std::log(std::max(p.rtt.p50_us, 0.001)) - llo) / (lhi - llo) : 0;
      fill = Colour(t);
      label = FormatMicrosHuman(p.rtt.p50_us);
    }
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"white\"/>"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        x, y, cell, cell, fill, x + cell / 2, y + cell / 2 + 4, Escape(label));
    if (p.rtt.received && p.rtt.lost())
      s += fmt::format(
          "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\">{:.0f}% loss</text>\n",
          x + cell / 2, y + cell / 2 + 16, p.rtt.loss_ratio() * 100);
  }
  // Outline each zone's block on the diagonal (peers are sorted by zone).
  size_t start = 0;
  for (size_t i = 1; i <= n; i++) {
    if (i < n && m.peers[i].zone == m.peers[start].zone) continue;
    int a = static_cast<int>(start), len = static_cast<int>(i - start);
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\" "
        "stroke-width=\"2\"/>\n",
        left + cell * a, top + cell * a, cell * len, cell * len);
    start = i;
  }
  s += fmt::format(
      "<text x=\"10\" y=\"{}\">colour: log scale from {} (green) to {} (red); grey: no answer; "
      "outlined: same zone</text>\n</svg>\n",
      h - 20, Escape(FormatMicrosHuman(lo)), Escape(FormatMicrosHuman(hi)));
  return s;
}

}  // namespace cloudkeep::latency
