"""The web's profile image: `facelogin.profile`, the one rule, kept importable from here."""

from facelogin.profile import DEFAULT_SIZE, ProfileImage, choose_size, profile_image

__all__ = ["DEFAULT_SIZE", "ProfileImage", "choose_size", "profile_image"]
