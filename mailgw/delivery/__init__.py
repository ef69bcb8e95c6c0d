"""Where accepted mail goes: recipient resolution and local delivery.

``resolve.RecipientResolver`` maps an envelope recipient to local users,
relay targets or nothing; ``local.deliver_local`` writes the mailbox copies.
"""

from __future__ import annotations

from mailgw.delivery.local import LocalDelivery, deliver_local
from mailgw.delivery.resolve import RecipientResolver, Resolution

__all__ = ["LocalDelivery", "RecipientResolver", "Resolution", "deliver_local"]
