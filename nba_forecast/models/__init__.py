"""Forecasters of the halftime margin m_24 from the margins m_0..m_18."""
