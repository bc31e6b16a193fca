"""Structured channel pruning: the channel groups and MACs of a network (`graph`), importance
criteria (`criteria`), and selecting, removing and recalibrating channels (`narrow`)."""

from tfgan_opt.compress.channels.criteria import CRITERIA
from tfgan_opt.compress.channels.depgraph import ChannelGraph
from tfgan_opt.compress.channels.graph import (ChannelGroup, channel_graph, channel_groups,
                                               count_macs)
from tfgan_opt.compress.channels.narrow import (channel_prune, mask_channel_outputs,
                                                mask_channels, narrow_channels, narrow_with_config,
                                                recalibrate_channels, select_channels)

__all__ = ["CRITERIA", "ChannelGraph", "ChannelGroup", "channel_graph", "channel_groups",
           "channel_prune", "count_macs", "mask_channel_outputs", "mask_channels",
           "narrow_channels", "narrow_with_config", "recalibrate_channels", "select_channels"]
