"""Scenes: images, target boxes and where a patch sits on each box."""

from patchkit.scenes.placement import PlacementConfig, place_patches
from patchkit.scenes.scene import Scene, SceneConfig, load_scene

__all__ = ["PlacementConfig", "Scene", "SceneConfig", "load_scene", "place_patches"]
