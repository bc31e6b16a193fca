"""Union-find over channel spaces, the bookkeeping of `channels.depgraph`.

A space is a set of channels removed together; tying two (an Add) merges them; *refining* space D
into P repetitions of space E records that D's units are E's channels at P positions (a Dense
output reshaped to (s, s, C)); a protected space is never pruned, with the reason kept.
"""


class ChannelSpaces:
    """Union-find over channel spaces, with refinements (space D == space E repeated P times)."""

    def __init__(self):
        self.parent, self.size, self.refine, self.protected = [], [], {}, {}

    def new(self, size):
        self.parent.append(len(self.parent))
        self.size.append(int(size))
        return len(self.parent) - 1

    def find(self, space):
        while self.parent[space] != space:
            self.parent[space] = self.parent[self.parent[space]]
            space = self.parent[space]
        return space

    def union(self, a, b):
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        self.parent[b] = a
        if b in self.protected:
            self.protected.setdefault(a, self.protected[b])
        if b in self.refine:
            if a in self.refine and self.refine[a][1] == self.refine[b][1]:
                self.union(self.refine[a][0], self.refine.pop(b)[0])
            elif a in self.refine:
                self.protect(a, "tied to a different reshape")
                self.protect(self.refine.pop(b)[0], "tied to a different reshape")
            else:
                self.refine[a] = self.refine.pop(b)

    def expand(self, segments):
        """Segments with refinements resolved: a list of (root space, size)."""
        out = []
        for space, size in segments:
            root = self.find(space)
            if root in self.refine:
                base, repeats = self.refine[root]
                out.extend(self.expand([(base, size // repeats)]) * repeats)
            else:
                out.append((root, size))
        return out

    def protect(self, space, reason):
        self.protected.setdefault(self.find(space), reason)

    def is_protected(self, root):
        return self.find(root) in self.protected
